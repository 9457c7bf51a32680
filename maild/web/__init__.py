"""``maild web``: the employees' pages, a process of its own (issue 15). It reads the rules;
it will write only into the spool, never the database, so the mail pipeline stays the one
path every request takes. This first part serves the category catalogue."""
