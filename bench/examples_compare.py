"""Does a new examples file help? The model with and without it, judged on the same
held-out examples (the others, 5 folds), with the best thresholds of each (no valid request
closed first, then outcomes, then categories). The test half of tests/fixtures/routing is
never read here.

    .venv/bin/python bench/examples_compare.py requests-written-5
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from maild.deciding.policy import load_policy  # noqa: E402
from maild.routing import admin, train  # noqa: E402
from maild.routing.decide import Thresholds  # noqa: E402

import thresholds  # noqa: E402


def main(name: str) -> None:
    org, _, reader = load_policy(ROOT / "rules", ROOT / "templates")
    shipped, _ = admin.gather(ROOT / "rules", org, reader, None)
    featurised = admin.featurise(reader, shipped)
    others = [x for x in featurised if name not in x[0].origin]
    new = [x for x in featurised if name in x[0].origin]
    scored = {"without": [], "with": []}
    for part, held in train.folds(others):
        for key, extra in (("without", []), ("with", new)):
            model = train.fit(part + extra)
            scored[key] += [(e.label, model.score(f.values, explain=0),
                             frozenset(n for n in f.values if n.startswith(("e:", "k:")))) for e, f in held]
    print(f"{len(others)} examples held out in turn; {len(new)} rows of {name} added to the training side or not")
    for key, rows in scored.items():
        best = None
        for close, probable in itertools.product([0.5, 0.6, 0.7, 0.8, 0.9], [0.01, 0.02, 0.03, 0.05, 0.1]):
            t = Thresholds(category=0.3, margin=0.1, transfer=0.5, this_not=0.3, close=close, probable=probable)
            closed, outcome, category, cases = thresholds.judge(org, reader, rows, t)
            if best is None or (closed, -outcome, -category) < best[0]:
                best = ((closed, -outcome, -category), t, cases)
        (closed, outcome, category), t, cases = best
        print(f"  {key:8} valid closed {closed}, outcome {-outcome / cases:.1%}, category {-category / cases:.1%} "
              f"at close={t.close}, probable={t.probable}")


if __name__ == "__main__":
    main(sys.argv[1])
