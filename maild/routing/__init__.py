"""Reading a new request: what the employee wrote, turned into a decision by its cost.

    text      the part of a mail that says what is wanted (no signature, no quotes), normalised
    entities  numbers recognised in context and masked (an inventory number is not a PBX number)
    lemmas    Russian word forms to their dictionary form (pymorphy3, wrapped once here)
    features  lemmas, lemma pairs, character n-grams, entities and the admin's words
    model     the weight table the daemon scores with (plain Python, no numpy at run time)
    decide    thresholds by the cost of being wrong: set, transfer, close, or triage
    examples  the labelled sentences in rules/ and the corrections staff made by mail
    train     scikit-learn, used only by ``maild rules train`` to write the weight table
    evaluate  accuracy, confusion and errors on a labelled set (``maild rules eval``)
"""
