"""maild: an email-first helpdesk daemon."""
