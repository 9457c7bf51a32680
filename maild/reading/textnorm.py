"""Text as a person sees it on screen: what command lines and the reading are matched on.

NFKC folds full-width letters, ligatures and every kind of space (no-break, thin, ideographic)
into their plain forms; Unicode's format characters (zero-width spaces and joiners, direction
marks, the BOM, the soft hyphen) are invisible and removed. Without this a "#заметка" behind a
BOM is not a command line, and an internal note goes to the requester as an answer.
"""
from __future__ import annotations

import re
import unicodedata

# Unicode's format characters (category Cf) that turn up in mail (the fast path below).
FORMAT = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")
_SPACES = re.compile(r"[^\S\n]")
# Characters that draw nothing where they stand, beyond category Cf: variation selectors,
# the combining grapheme joiner, Mongolian and Khmer marks, tags, musical formatting, the
# Hangul fillers and the Braille blank (a "blank" first line that is not one).
_ASTRAL_INVISIBLE = [(0xE0000, 0xE007F), (0xE0100, 0xE01EF), (0x1D173, 0x1D17A), (0x1BCA0, 0x1BCA3)]
_FILLERS = (0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x17B4, 0x17B5, 0x034F)
_TABLE: dict[int, None] = {}


def _invisible_table() -> dict[int, None]:
    """Every code point that is a format character or a non-spacing or enclosing mark (after
    NFKC none of those is part of a Russian letter), built once on first use."""
    if not _TABLE:
        for cp in range(0x10000):
            if unicodedata.category(chr(cp)) in ("Cf", "Mn", "Me"):
                _TABLE[cp] = None
        for low, high in _ASTRAL_INVISIBLE:
            _TABLE.update(dict.fromkeys(range(low, high + 1)))
        _TABLE.update(dict.fromkeys(_FILLERS))
    return _TABLE


def visible(text: str) -> str:
    """NFKC, format characters removed, every space but a line break a plain space."""
    return _SPACES.sub(" ", FORMAT.sub("", unicodedata.normalize("NFKC", text)))


def seen(text: str) -> str:
    """What a reader's eye sees, for deciding whether a line is a command: ``visible`` and
    every invisible mark or filler removed (slower: for the few lines at the top of a mail)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).translate(_invisible_table()))
