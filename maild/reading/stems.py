"""Words to search stems, the way PostgreSQL's ``russian`` text search configuration makes
them (issue 17): both databases must find the same tickets for the same words, so SQLite's
index is filled with these and PostgreSQL's is its own ``to_tsvector('russian', ...)``.

PostgreSQL's ``russian`` sends Cyrillic words to the Snowball Russian stemmer, Latin ones to
the Snowball English one, and keeps numbers and words with digits as they are; so does this,
with PyStemmer (the same Snowball stemmers, in C). Both lower-case and read ``ё`` as ``е``.
What differs: PostgreSQL also keeps a hyphenated word whole and reads e-mail addresses and
host names as one token; here they are their letter runs. A query of words from one still
finds the same entries in the other, because each side reads query and text alike.
"""
from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
# Words too common to narrow a search: a query drops them (PostgreSQL's plainto_tsquery drops
# its own list; this is a shorter one, of the words people put in a request's first line).
STOP_WORDS = frozenset(" ".join((
    "а без бы в вам вас весь во вот все всё вы где да для до его ее её ей если есть еще ещё же за и из",
    "или им их к как ко когда кто ли либо меня мне мной мы на над нам нас не нет ни но ну о об однако",
    "он она они оно от очень по под при про с со так также там те тем то того тоже только том ты у уже",
    "чем что чтобы чтоб эта эти это этот я",
    "a an and are as at be but by for from has have i if in is it its of on or our so that the their",
    "this to was we were will with you your")).split())


def words(text: str) -> list[str]:
    """The words of ``text`` as both databases read them: lower case, ``ё`` as ``е``."""
    return _WORD.findall(text.lower().replace("ё", "е"))


class Stems:
    """One reader of words; PyStemmer's stemmers are made once (they are not free)."""

    def __init__(self) -> None:
        self._russian = Stemmer.Stemmer("russian")
        self._english = Stemmer.Stemmer("english")

    def of(self, text: str) -> list[str]:
        """The stems of every word of ``text``, in order, stop words too (as PostgreSQL's
        index keeps positions, this keeps the words: the query side drops them)."""
        return [self._one(word) for word in words(text)]

    def query(self, text: str) -> list[str]:
        """The stems a search for ``text`` needs, each once, stop words dropped."""
        return list(dict.fromkeys(self._one(word) for word in self.query_words(text)))

    @staticmethod
    def query_words(text: str) -> list[str]:
        """The words of a query that count (stop words dropped): what PostgreSQL's
        plainto_tsquery is given, so that it drops no fewer words than SQLite's search."""
        return [w for w in words(text) if w not in STOP_WORDS]

    def indexed(self, text: str) -> str:
        """What SQLite's full-text table holds for ``text``: its stems, space-separated."""
        return " ".join(self.of(text))

    def _one(self, word: str) -> str:
        if _DIGIT.search(word):
            return word
        return self._english.stemWord(word) if word.isascii() else self._russian.stemWord(word)


@lru_cache(maxsize=1)
def stems() -> Stems:
    """The process's reader (stateless after it is made; safe to share)."""
    return Stems()
