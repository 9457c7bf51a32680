"""Finding many sets of words in a text in one pass: the index behind the rule conditions
``words`` and ``whole_words`` (rules.py), and how text is normalised for it."""
from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from maild.deciding.organisation import Organisation

if TYPE_CHECKING:
    from maild.deciding.rules import Rule


@functools.lru_cache(maxsize=32)
def normalise(text: str) -> str:
    """What matching sees: 1C in Latin is the Cyrillic 1С; ё is е."""
    return re.sub(r"(?<![\w])1[CcСс](?![\w])", "1С", text).replace("ё", "е").replace("Ё", "Е")


_TOKEN = re.compile(r"\w+")


@functools.lru_cache(maxsize=16)
def _words(text: str) -> tuple[str, ...]:
    """A text's words, lower case (cached: every set and rule looks at the same texts)."""
    return tuple(_TOKEN.findall(text.lower()))


class WordSets:
    """Named sets of words and phrases found in one pass over a text's words (a dict lookup
    per word), instead of one regular-expression scan per set: the category step went from
    the most expensive part of processing a message to a small one.

    A word matches every word that begins with it; in a phrase the last word is such a
    prefix and the others must be whole ("сетевая папк" finds "сетевая папка")."""

    def __init__(self, sets: list[tuple[str, tuple[str, ...]]], exact: frozenset[str] | set[str] = frozenset()):
        """``exact`` names the sets whose words must be whole words (no endings)."""
        self.single: dict[str, list[str]] = {}                             # word prefix -> names
        self.whole: dict[str, list[str]] = {}                              # whole word -> names
        self.multi: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}  # first word -> phrases
        for name, words in sets:
            for phrase in words:
                tokens = tuple(t.lower() for t in _TOKEN.findall(normalise(phrase)))
                if len(tokens) == 1:
                    (self.whole if name in exact else self.single).setdefault(tokens[0], []).append(name)
                elif tokens:
                    self.multi.setdefault(tokens[0], []).append((tokens, name, name in exact))
        self.lengths = sorted({len(prefix) for prefix in self.single})
        # A quick test that rules out most words: no single word of a set begins like them,
        # and no phrase starts with them.
        self.starts = {prefix[:3] for prefix in self.single if len(prefix) >= 3}
        self.short = {prefix for prefix in self.single if len(prefix) < 3}

    def find(self, text: str) -> dict[str, set[str]]:
        """name -> the phrases (as written in the text, lower case) that matched."""
        words = _words(text)
        hits: dict[str, set[str]] = {}
        single, multi, lengths, starts, short = self.single, self.multi, self.lengths, self.starts, self.short
        for i, word in enumerate(words):
            for name in self.whole.get(word, ()):
                hits.setdefault(name, set()).add(word)
            if word[:3] not in starts and word not in multi and word[:2] not in short and word[:1] not in short:
                continue                       # most words: nothing in any set begins so
            for length in lengths:
                if length > len(word):
                    break
                for name in single.get(word[:length], ()):
                    hits.setdefault(name, set()).add(word)
            for tokens, name, whole in multi.get(word, ()):
                last = len(tokens) - 1
                if (i + last < len(words) and (words[i + last] == tokens[last] if whole
                                               else words[i + last].startswith(tokens[last]))
                        and all(words[i + k] == tokens[k] for k in range(1, last))):
                    hits.setdefault(name, set()).add(" ".join(words[i:i + last + 1]))
        return hits


class Matcher(WordSets):
    """Every word set of the rule conditions in one index: one pass over a text answers them
    all (cached for the few texts of the mail being routed). Categories are not found by
    words here any more: the reading (``routing/``) weighs their words with everything else."""

    def __init__(self, org: Organisation, table: tuple[Rule, ...]):
        conditions = [c for rule in table for c in rule.conditions + rule.unless
                      if c.how in ("words", "whole_words")]
        sets = [(c.key, c.values) for c in conditions]
        super().__init__(sets, exact={c.key for c in conditions if c.how == "whole_words"})
        self._cache: dict[str, dict[str, set[str]]] = {}

    def find(self, text: str) -> dict[str, set[str]]:
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) > 8:
                self._cache.clear()
            found = self._cache[text] = super().find(text)
        return found
