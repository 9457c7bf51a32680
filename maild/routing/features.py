"""A request as the model reads it: a sparse vector of named features.

    w:<lemma>        a word of the subject or body, in its dictionary form
    s:<lemma>        the same word in the subject (the subject says most in fewest words)
    b:<lemma>_<lemma> two neighbouring words ("не_печатать", "сетевой_папка")
    c:<n-gram>       3- and 4-letter pieces of the words: typos, slang and unknown forms
    e:<entity>       a recognised number (``__pbx__``, ``__inv__`` ...; see entities)
    k:<DEPT|name>    the admin's words or patterns of a category matched: strong, not deciding

Each group of word features is scaled to unit length (a long mail does not outvote a short
one) and weighed (GROUP_WEIGHTS); an entity counts 1, the admin's words KEYWORD_WEIGHT.
``maild rules train`` and the daemon build the vector with this one function, so the weights
always meet the features they were made for.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from maild.routing import entities, text
from maild.routing.lemmas import Lemmatiser


@dataclass(frozen=True)
class Features:
    values: dict[str, float]
    entities: tuple[entities.Entity, ...]
    words: int                     # words read (0: nothing to go by)


class KeywordIndex:
    """The categories' words (a word matches every word that begins with it; a phrase's
    last word likewise) and patterns, looked up in a text's words and in their lemmas."""

    def __init__(self, categories: list[tuple[str, tuple[str, ...], tuple[str, ...]]]):
        """``categories``: (label, words, patterns)."""
        self._single: dict[str, list[str]] = {}
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}     # first word -> phrases
        self._patterns: list[tuple[re.Pattern, str]] = []
        for label, words, patterns in categories:
            for phrase in words:
                parts = tuple(text.tokens(text.normalise(phrase)))
                if len(parts) == 1:
                    self._single.setdefault(parts[0], []).append(label)
                elif parts:
                    self._phrases.setdefault(parts[0], []).append((parts, label))
            for pattern in patterns:
                self._patterns.append((re.compile(text.normalise(pattern), re.I), label))
        self._lengths = sorted({len(p) for p in self._single})
        # Most words begin like no admin word: one set lookup rules them out.
        self._starts = {p[:3] for p in self._single if len(p) >= 3}
        self._short = {p for p in self._single if len(p) < 3}

    def find(self, sequences: list[list[str]], raw: str) -> dict[str, set[str]]:
        """label -> the words that matched, over word sequences (surface and lemmas) and the
        raw normalised text (patterns)."""
        hits: dict[str, set[str]] = {}
        single, lengths, starts, short = self._single, self._lengths, self._starts, self._short
        for words in sequences:
            for word in words:
                if word[:3] not in starts and word[:1] not in short and word[:2] not in short:
                    continue
                for n in lengths:
                    if n > len(word):
                        break
                    for label in single.get(word[:n], ()):
                        hits.setdefault(label, set()).add(word)
            starting = [self._phrases[w] for w in set(words) & self._phrases.keys()]
            if starting:
                joined = " " + " ".join(words)
                for phrases in starting:
                    for parts, label in phrases:
                        # The last word is a prefix, like a single word: "сетевой папк" finds "сетевой папки".
                        if " " + " ".join(parts) in joined:
                            hits.setdefault(label, set()).add(" ".join(parts))
        for pattern, label in self._patterns:
            found = pattern.search(raw)
            if found:
                hits.setdefault(label, set()).add(found.group(0))
        return hits


def _ngrams(word: str) -> list[str]:
    padded = f"^{word}$"
    return [padded[i:i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]


# Each group of word features is scaled to unit length on its own, then weighed: the letter
# pieces carry the most (they survive typos, slang and forms the dictionary lacks). Chosen by
# cross-validation on the shipped examples (README "How a request is read").
GROUP_WEIGHTS = {"w": 1.0, "s": 1.0, "b": 1.0, "c": 2.0}
KEYWORD_WEIGHT = 0.5


def extract(subject: str, body: str, lemmatiser: Lemmatiser, keywords: KeywordIndex | None = None) -> Features:
    subject, body, sign = text.request_text(subject, body)
    subject, found_subject = entities.mask(subject)
    body, found_body = entities.mask(body)
    _, found_sign = entities.mask(sign, own_contact=True)
    subject_words, body_words = text.tokens(subject), text.tokens(body)
    lemma = lemmatiser.lemma
    subject_lemmas = [lemma(w) for w in subject_words]
    body_lemmas = [lemma(w) for w in body_words]
    groups: dict[str, set[str]] = {"w": set(), "s": set(), "b": set(), "c": set()}
    for lemmas in (subject_lemmas, body_lemmas):
        groups["w"].update("w:" + x for x in lemmas if not x.startswith("__"))
        groups["b"].update(f"b:{a}_{b}" for a, b in itertools.pairwise(lemmas))
    for x in set(subject_lemmas) | set(body_lemmas):        # each word's pieces once
        if len(x) >= 4 and not x.startswith("__"):
            groups["c"].update("c:" + g for g in _ngrams(x))
    groups["s"].update("s:" + x for x in subject_lemmas)
    values: dict[str, float] = {}
    for group, names in groups.items():
        if names:
            values.update(dict.fromkeys(names, GROUP_WEIGHTS[group] / math.sqrt(len(names))))
    for entity in found_subject + found_body:
        values["e:" + entity.kind.value] = 1.0
    if keywords is not None:
        raw = subject + "\n" + body
        for label in keywords.find([subject_words + ["|"] + body_words, subject_lemmas + ["|"] + body_lemmas], raw):
            values["k:" + label] = KEYWORD_WEIGHT
    return Features(values, found_subject + found_body + found_sign, len(subject_words) + len(body_words))


def readable(feature: str) -> str:
    """A feature as a person reads it in an explanation."""
    kind, _, name = feature.partition(":")
    if kind == "b":
        return " ".join(f"<{part.strip('_')}>" if part.startswith("__") else part
                        for part in re.findall(r"__[a-z]+__|[^_]+", name))
    if name.startswith("__"):
        return f"<{name.strip('_')}>" + (" (в теме)" if kind == "s" else "")
    if kind == "c":
        return "~" + name.strip("^$")
    if kind == "e":
        return {"pbx": "номер АТС", "phone": "номер телефона", "ext": "свой номер", "mobile": "мобильный номер",
                "inv": "инв. номер", "tab": "табельный номер", "doc": "номер документа", "room": "кабинет",
                "ip": "IP-адрес", "port": "порт", "date": "дата", "time": "время", "amount": "сумма",
                "num": "число"}.get(name, name)
    if kind == "k":
        return "слова категории " + name.split("|", 1)[-1]
    if kind == "s":
        return name + " (в теме)"
    return name
