"""Turning bytes of unknown or doubtful charset into text.

Russian mail arrives in utf-8, windows-1251, koi8-r and (from DOS-era programs) cp866,
often with no charset declared or with a wrong one (``us-ascii`` over 8-bit text,
``x-unknown``, ``bad-charset``). Declared charsets are trusted when the bytes fit them;
otherwise utf-8 is tried strictly, then the three Cyrillic single-byte charsets are
scored by how Russian the result looks (frequent lowercase letters vs. the box-drawing
and capitals a wrong guess produces). Generic detectors guess poorly on the short texts
mail has (a subject, a two-line body); four candidates and a letter table do better.
"""
from __future__ import annotations

import codecs

CYRILLIC_SINGLE_BYTE = ("cp1251", "koi8-r", "cp866")   # codecs.lookup() names

# Charset names seen in mail that Python does not know by that name.
ALIASES = {
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ukrainian": "mac_cyrillic",
    "win-1251": "cp1251",
    "windows-1251": "cp1251",
    "cp-1251": "cp1251",
    "x-cp1251": "cp1251",
    "koi8r": "koi8-r",
    "koi8": "koi8-r",
    "dos-866": "cp866",
    "ibm866": "cp866",
    "unicode-1-1-utf-7": "utf-7",
    "utf7": "utf-7",
    "x-user-defined": "cp1251",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
}

# Declared charsets that say nothing about 8-bit bytes when such bytes are present.
_WEAK = {"ascii", "iso8859-1", "cp1252"}

# Relative frequency weights of Russian lowercase letters (approximate, per mille).
_FREQ = dict(zip("оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
                 (110, 85, 80, 74, 67, 63, 55, 47, 45, 44, 35, 32, 30, 28, 26, 20, 19, 17, 17,
                  16, 16, 15, 12, 10, 9, 7, 6, 5, 4, 3, 3, 2, 2), strict=True))


def lookup(name: str | None) -> str | None:
    """The Python codec name for a declared charset, or None when unknown."""
    if not name:
        return None
    name = name.strip().strip('"\'').lower()
    name = ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # hex, base64, rot13, zlib... are codecs too, but not charsets: a mail may not pick them.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def russian_score(text: str) -> float:
    """Higher for text that reads like Russian (or plain Latin); lower for mojibake."""
    score = 0.0
    prev = " "
    for ch in text:
        low = ch.lower()
        weight = _FREQ.get(low)
        if weight is not None:
            score += weight
            if ch != low and prev.islower():
                score -= 80          # a capital inside a word: what a wrong codec produces
            if prev.isascii() and prev.isalpha():
                score -= 80          # Cyrillic glued to Latin: a Latin text misread
        elif _is_cyrillic(ch) or "\u2500" <= ch <= "\u25ff" or "\u0080" <= ch <= "\u00bf":
            score -= 60              # non-Russian Cyrillic, box drawing, C1 controls, symbols
        elif ch.isascii() and ch.isalpha() and _is_cyrillic(prev):
            score -= 80
        prev = ch
    return score


def _detect(data: bytes, candidates: tuple[str, ...] = CYRILLIC_SINGLE_BYTE + ("cp1252",)) -> str:
    best, best_score = "cp1251", float("-inf")
    for codec in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        score = russian_score(text)
        if score > best_score:
            best, best_score = codec, score
    return best


def _mostly_utf8(data: bytes) -> str | None:
    """utf-8 text with a few broken sequences (a truncated name, one bad byte)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    return text if good >= 4 * bad else None


def decode(data: bytes, declared: str | None = None) -> str:
    """Decode ``data``; never raises, and uses replacement only when nothing fits."""
    try:
        return _decode(data, declared)
    except Exception:   # a codec that misbehaves on odd input: the bytes still become text
        return data.decode("utf-8", "replace")


def _decode(data: bytes, declared: str | None) -> str:
    if not data:
        return ""
    codec = lookup(declared)
    if codec and codec not in _WEAK:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            text = None
        if text is not None:
            if (codec in CYRILLIC_SINGLE_BYTE and not data.isascii() and _mostly_utf8(data)
                    and "\ufffd" not in data.decode("utf-8", "replace")):
                return data.decode("utf-8")   # a Cyrillic label over valid utf-8: mislabelled
            return text
    if data.isascii():
        return data.decode("ascii")
    if codec in _WEAK and codec != "ascii":
        text = data.decode(codec, "replace")
        if russian_score(text) >= russian_score(data.decode(_detect(data), "replace")):
            return text
    utf8 = _mostly_utf8(data)
    if utf8 is not None:
        return utf8
    return data.decode(_detect(data), "replace")


def repair_header(text: str) -> str:
    """Header text the stdlib read as bytes-in-surrogates (raw 8-bit headers) made readable."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode(text.encode("utf-8", "surrogateescape"))
