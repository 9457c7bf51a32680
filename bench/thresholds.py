"""Choosing rules/routing.toml's thresholds without looking at the test mail.

Every shipped example is scored by a model trained without it (5 folds), sent once to its own
department and once to the other; then a grid of thresholds is tried on those held-out scores
and the best is printed: no valid request closed, then the most right outcomes, then the most
right categories. The test part of tests/fixtures/routing is never read here.

    .venv/bin/python bench/thresholds.py
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.deciding.policy import load_policy  # noqa: E402
from maild.routing import admin, train  # noqa: E402
from maild.routing.decide import Thresholds, Verdict, decide  # noqa: E402

VETO = "--no-veto" not in sys.argv     # compare: python bench/thresholds.py --no-veto


def held_out_scores():
    org, _, reader = load_policy(ROOT / "rules", ROOT / "templates")
    shipped, _ = admin.gather(ROOT / "rules", org, reader, None)
    featurised = admin.featurise(reader, shipped)
    scored = []
    for part, held in train.folds(featurised):
        model = train.fit(part)
        scored += [(e.label, model.score(f.values, explain=0),
                    frozenset(n for n in f.values if n.startswith(("e:", "k:")))) for e, f in held]
    return org, reader, scored


def judge(org, reader, scored, t: Thresholds) -> tuple[int, int, int, int]:
    """(valid closed, outcome right, category right, cases)."""
    codes = [d.code for d in org.departments]
    closed_valid = outcome_ok = category_ok = cases = 0
    for label, scores, evidence in scored:
        dept, _, name = label.partition("|")
        for sent_to in codes:
            if not name and sent_to != "OSA":
                continue                      # topics close only in OSA (rules.toml)
            reading = decide(scores, sent_to, reader.classes, t, evidence if VETO else frozenset())
            cases += 1
            closes = reading.verdict is Verdict.TOPIC and sent_to == "OSA"
            if name:
                closed_valid += closes
                final = reading.department
                outcome_ok += not closes and final == dept
                category_ok += not closes and final == dept and reading.category == name
            else:
                outcome_ok += closes and reading.topic == label
    return closed_valid, outcome_ok, category_ok, cases


def main() -> None:
    org, reader, scored = held_out_scores()
    grid = dict(category=[0.3, 0.4], margin=[0.1], transfer=[0.5, 0.6], this_not=[0.3],
                close=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95], probable=[0.01, 0.02, 0.03, 0.05, 0.1])
    results = []
    for values in itertools.product(*grid.values()):
        t = Thresholds(**dict(zip(grid, values, strict=True)))
        closed_valid, outcome_ok, category_ok, cases = judge(org, reader, scored, t)
        results.append(((closed_valid, -outcome_ok, -category_ok), t, cases))
    results.sort(key=lambda r: r[0])
    print(f"{len(scored)} examples scored held out; the best thresholds first:")
    for (closed_valid, outcome_ok, category_ok), t, cases in results[:8]:
        print(f"  valid closed {closed_valid}, outcome {-outcome_ok / cases:.1%}, category {-category_ok / cases:.1%}: "
              + ", ".join(f"{k}={getattr(t, k)}" for k in Thresholds.FIELDS))
    print(f"  in force: {reader.settings.thresholds}: "
          f"{judge(org, reader, scored, reader.settings.thresholds)}")


if __name__ == "__main__":
    main()
