"""The reading of the policy in force: features, the model and the thresholds together,
built once per policy snapshot (``policy.load_policy``) and handed to whoever routes."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from maild.deciding.organisation import Organisation
from maild.routing import examples as examples_mod
from maild.routing.decide import Classes, Reading, Verdict, decide
from maild.routing.features import KeywordIndex, extract, readable
from maild.routing.lemmas import Lemmatiser, shared
from maild.routing.model import MODEL_FILE, Model, ModelError, Scores

log = logging.getLogger("maild")


class Reader:
    def __init__(self, org: Organisation, settings: examples_mod.Settings, model: Model | None,
                 lemmatiser: Lemmatiser | None = None, problem: str = ""):
        self.settings = settings
        self.model = model
        self.problem = problem          # why there is no model (said in every triage reason)
        self.lemmatiser = lemmatiser or shared()
        self.classes = Classes({f"{d.code}|{c.name}": c.kind for d in org.departments for c in d.categories})
        self.keywords = KeywordIndex([(f"{d.code}|{c.name}", c.words, c.patterns)
                                      for d in org.departments for c in d.categories]
                                     + [(f"kind|{kind}", words, ()) for kind, words in org.kind_words])

    def warm(self) -> None:
        """Load the dictionaries and the model's tables now: a process that forks its
        children after this shares those pages with them (``maild serve``)."""
        self.lemmatiser.lemma("заявка")
        if self.model is not None:
            self.model.means  # noqa: B018 - computed once, here

    def features(self, subject: str, body: str):
        return extract(subject, body, self.lemmatiser, self.keywords)

    def scores(self, subject: str, body: str) -> tuple[Scores, tuple[str, ...], frozenset[str]] | None:
        """The model's scores, the numbers recognised (readable) and the entity features."""
        if self.model is None:
            return None
        found = self.features(subject, body)
        evidence = frozenset(name for name in found.values if name.startswith(("e:", "k:")))
        return (self.model.score(found.values), tuple(f"{e.kind.value} {e.text.strip()}" for e in found.entities),
                evidence)

    def read(self, subject: str, body: str, sent_to: str) -> Reading:
        scored = self.scores(subject, body)
        if scored is None:
            return Reading(Verdict.TRIAGE, sent_to, None, None, None,
                           reason=f"no routing model ({self.problem}): every request goes to triage")
        scores, entities, evidence = scored
        reading = decide(scores, sent_to, self.classes, self.settings.thresholds, evidence)
        return replace(reading, features=tuple(readable(f) for f in reading.features), entities=entities)


def load(rules_dir: Path, org: Organisation) -> Reader:
    """The reader of ``rules_dir`` (raises RulesError for bad settings). A missing or stale
    model is not an error: every request then goes to triage, and ``rules check`` says so."""
    settings = examples_mod.load_settings(rules_dir)
    path = Path(rules_dir) / MODEL_FILE
    try:
        model = Model.load(path)
    except ModelError as exc:
        log.warning("%s", exc)
        return Reader(org, settings, None, problem=str(exc))
    return Reader(org, settings, model)


def staleness(reader: Reader, org: Organisation) -> list[str]:
    """Why the model in force may not fit the rules (warnings for ``rules check``)."""
    if reader.model is None:
        return [reader.problem]
    trained = set(reader.model.classes)
    now = set(reader.classes.kinds) | {t.name for t in reader.settings.topics}
    out = []
    if now - trained:
        out.append(f"{MODEL_FILE}: not trained for {', '.join(sorted(now - trained))}: run 'maild rules train'")
    if trained - now:
        out.append(f"{MODEL_FILE}: knows classes no longer in the rules ({', '.join(sorted(trained - now))}); "
                   "they are ignored until 'maild rules train'")
    return out
