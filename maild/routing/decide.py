"""From the model's probabilities to a decision, by the cost of being wrong.

    a category   set only when confident: probability >= ``category`` and ``margin`` above
                 the next class
    a transfer   only when the other department is clearly meant (its categories together
                 >= ``transfer``) and this one is not (<= ``this_not``)
    a topic      (mobile/PBX, not IT work) only when confident (>= ``close``) and no category
                 of this department is probable (each < ``probable``): only then may a rule
                 close the request without processing
    triage       everything else: the ticket stays open where it was sent, no category, and
                 staff see the three likeliest categories with the line that sets each

The employee never loses a request to a guess: every uncertain case falls through to triage.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from maild.routing.model import Scores


class Verdict(enum.Enum):
    CATEGORY = "category"     # a category of the department written to
    OTHER = "other"           # another department is clearly meant
    TOPIC = "topic"           # confidently outside every category (telecom, not-it)
    TRIAGE = "triage"         # unsure: stays open where it was sent, staff choose


@dataclass(frozen=True)
class Thresholds:
    category: float = 0.45
    margin: float = 0.15
    transfer: float = 0.75
    this_not: float = 0.15
    close: float = 0.70
    probable: float = 0.10

    FIELDS = ("category", "margin", "transfer", "this_not", "close", "probable")


@dataclass(frozen=True)
class Candidate:
    department: str          # department code
    category: str            # category name
    probability: float

    def as_dict(self) -> dict:
        return {"department": self.department, "category": self.category,
                "probability": round(self.probability, 3)}


@dataclass(frozen=True)
class Reading:
    """What the reading made of a new request, relative to the department it was sent to."""
    verdict: Verdict
    department: str                        # the department meant: sent-to, or the other one
    category: str | None                   # confident category in ``department``
    kind: str | None                       # problem | request (the category's, or the likelier)
    topic: str | None                      # telecom / not-it, for Verdict.TOPIC
    candidates: tuple[Candidate, ...] = ()  # the three likeliest categories of each department, best first
    scores: tuple[tuple[str, float], ...] = ()  # the five likeliest classes overall
    features: tuple[str, ...] = ()         # what weighed most for the best class (readable)
    entities: tuple[str, ...] = ()         # numbers recognised: "инв. номер 0104-2211"
    reason: str = ""

    @property
    def meant(self) -> str:
        """What the rule field ``meant`` sees: a department code, a topic, or "unsure"."""
        if self.verdict is Verdict.TOPIC:
            return self.topic or "unsure"
        if self.verdict is Verdict.TRIAGE:
            return "unsure"
        return self.department

    def summary(self) -> str:
        """One line for the log (``maild log``): the verdict, the likeliest classes, what weighed."""
        likeliest = ", ".join(f"{label} {p:.0%}" for label, p in self.scores[:3])
        weighed = f"; weighed most: {', '.join(self.features)}" if self.features else ""
        return f"reading: {self.verdict.value} ({self.reason}); likeliest: {likeliest}{weighed}"

    def as_dict(self) -> dict:
        return {"verdict": self.verdict.value, "meant": self.meant, "department": self.department,
                "category": self.category, "kind": self.kind, "topic": self.topic,
                "candidates": [c.as_dict() for c in self.candidates],
                "scores": [{"class": c, "probability": round(p, 3)} for c, p in self.scores],
                "features": list(self.features), "entities": list(self.entities), "reason": self.reason}


@dataclass(frozen=True)
class Classes:
    """What the model's class labels mean: ``DEPT|category`` or a topic name."""
    kinds: dict[str, str] = field(default_factory=dict)    # "DEPT|category" -> kind

    @staticmethod
    def split(label: str) -> tuple[str | None, str]:
        dept, sep, name = label.partition("|")
        return (dept, name) if sep else (None, label)


# Numbers that only IT work (or telephony) writes in the text of a request: with one of them a
# mail is never confidently "not IT work", however the words score.
IT_EVIDENCE = frozenset({"e:ip", "e:port", "e:inv", "e:phone", "e:ext", "e:pbx", "e:mobile"})
NOT_IT = "not-it"


def decide(scores: Scores, sent_to: str, classes: Classes, t: Thresholds,
           evidence: frozenset[str] = frozenset()) -> Reading:
    """``evidence``: the entity features (``e:…``) and the admin's words found (``k:DEPT|…``),
    for the veto on ``not-it``: a mail that names this department's things, or numbers only IT
    work writes, is never confidently "not IT work"."""
    ranked = [(label, p) for label, p in scores.ranked if Classes.split(label)[0] is None or label in classes.kinds]
    total = sum(p for _, p in ranked) or 1.0
    ranked = [(label, p / total) for label, p in ranked]     # classes of removed categories dropped
    by_dept: dict[str, float] = {}
    topics: dict[str, float] = {}
    for label, p in ranked:
        dept, name = Classes.split(label)
        if dept is None:
            topics[name] = topics.get(name, 0.0) + p
        else:
            by_dept[dept] = by_dept.get(dept, 0.0) + p
    here = by_dept.get(sent_to, 0.0)
    other, other_p = max(((d, p) for d, p in by_dept.items() if d != sent_to), key=lambda x: x[1],
                         default=(None, 0.0))

    def candidates(dept: str) -> tuple[Candidate, ...]:
        return tuple(Candidate(dept, Classes.split(label)[1], p) for label, p in ranked
                     if Classes.split(label)[0] == dept)[:3]

    def kind_of(dept: str) -> str | None:
        mass = {"problem": 0.0, "request": 0.0}
        for label, p in ranked:
            if Classes.split(label)[0] == dept:
                mass[classes.kinds[label]] += p
        return max(mass, key=mass.__getitem__) if any(mass.values()) else None

    def confident(dept: str) -> tuple[str, float] | None:
        """The best category of ``dept`` if it is the best class overall, clearly."""
        (label, p), runner = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        if Classes.split(label)[0] == dept and p >= t.category and p - runner >= t.margin:
            return Classes.split(label)[1], p
        return None

    top5 = tuple((label, round(p, 3)) for label, p in ranked[:5])
    features = tuple(scores.contributions.get(ranked[0][0], ()))
    every = tuple(sorted((c for dept in by_dept for c in candidates(dept)), key=lambda c: -c.probability))
    common: dict[str, Any] = dict(scores=top5, features=tuple(f for f, _ in features), candidates=every)
    best_label, best_p = ranked[0]
    best_dept, best_name = Classes.split(best_label)

    vetoed = best_name == NOT_IT and (bool(evidence & IT_EVIDENCE)
                                      or any(e.startswith(f"k:{sent_to}|") for e in evidence))
    if (best_dept is None and best_p >= t.close and not vetoed
            and all(c.probability < t.probable for c in candidates(sent_to))):
        return Reading(Verdict.TOPIC, sent_to, None, None, best_name,
                       reason=f"{best_name} {best_p:.2f}; no category of {sent_to} at {t.probable:.2f} or more",
                       **common)
    if other is not None and other_p >= t.transfer and here <= t.this_not:
        found = confident(other)
        return Reading(Verdict.OTHER, other, found[0] if found else None,
                       classes.kinds.get(f"{other}|{found[0]}") if found else kind_of(other), None,
                       reason=f"{other} {other_p:.2f}, {sent_to} {here:.2f}", **common)
    found = confident(sent_to)
    if found is not None:
        return Reading(Verdict.CATEGORY, sent_to, found[0], classes.kinds[f"{sent_to}|{found[0]}"], None,
                       reason=f"{found[0]} {found[1]:.2f}", **common)
    return Reading(Verdict.TRIAGE, sent_to, None, kind_of(sent_to), None,
                   reason=f"unsure: best {best_label} {best_p:.2f}", **common)
