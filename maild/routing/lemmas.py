"""Russian word forms to their dictionary form: "регламентного задания" and "регламентное
задание" meet as "регламентный задание". The only module that touches pymorphy3.

pymorphy3 costs about 30 µs a word; mail repeats its words, so each instance keeps the
lemmas it has seen (bounded: cleared when full, a few MB at most).
"""
from __future__ import annotations

import logging

CACHE_LIMIT = 200_000
_IN_THIS_PROCESS: list[Lemmatiser] = []   # see __reduce__


class Lemmatiser:
    """``lemma(word)`` for a normalised word (lower case, ``ё`` already ``е``)."""

    def __init__(self) -> None:
        self._morph = None        # the dictionaries load on the first word: only processes that read mail pay
        self._cache: dict[str, str] = {}

    def _analyser(self):
        if self._morph is None:
            import pymorphy3

            logging.getLogger("pymorphy3").setLevel(logging.WARNING)   # not "Loading dictionaries" each start
            self._morph = pymorphy3.MorphAnalyzer()
        return self._morph

    def lemma(self, word: str) -> str:
        found = self._cache.get(word)
        if found is None:
            if word.startswith("__") or not any("а" <= c <= "я" for c in word):
                found = word          # masks, numbers and latin words stay as they are
            else:
                found = self._analyser().parse(word)[0].normal_form.replace("ё", "е")
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = found
        return found

    def __reduce__(self):
        # A policy snapshot is pickled to the parser processes with every batch: there the
        # analyser already built in that process is used, not built again per batch.
        return (shared, ())


def shared() -> Lemmatiser:
    """This process's lemmatiser (built on first use)."""
    if not _IN_THIS_PROCESS:
        _IN_THIS_PROCESS.append(Lemmatiser())
    return _IN_THIS_PROCESS[0]
