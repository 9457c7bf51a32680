"""``maild rules train``: the weight table from the labelled examples, with scikit-learn.

scikit-learn (and numpy, scipy) are needed here only: the daemon scores with the plain table
``model.Model``. A multinomial logistic regression on the features of ``features.extract``;
features seen in fewer than ``min_count`` examples are left out (noise, and size).
"""
from __future__ import annotations

import hashlib
import random
from array import array
from collections import Counter
from datetime import UTC, datetime

from maild.routing.examples import Example
from maild.routing.features import Features
from maild.routing.model import Model

C = 50.0           # inverse regularisation: chosen by cross-validation on the shipped examples
MIN_COUNT = 2


def fit(featurised: list[tuple[Example, Features]], c: float = C, min_count: int = MIN_COUNT) -> Model:
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise SystemExit("maild rules train needs scikit-learn: pip install 'maild[train]'") from None
    counts = Counter(name for _, f in featurised for name in f.values)
    rows = [{k: v for k, v in f.values.items() if counts[k] >= min_count} for _, f in featurised]
    labels = [e.label for e, _ in featurised]
    vectoriser = DictVectorizer()
    matrix = vectoriser.fit_transform(rows)
    # Balanced: the topics and the rarer categories weigh as much as the common ones.
    classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    classifier.fit(matrix, labels)
    classes = [str(x) for x in classifier.classes_]
    coef = classifier.coef_
    bias = [float(b) for b in classifier.intercept_]
    if len(classes) == 2:            # scikit-learn keeps one row for two classes
        coef = [[-w for w in coef[0]], list(coef[0])]
        bias = [-bias[0], bias[0]]
        columns = list(zip(*coef, strict=True))
    else:
        columns = coef.T.tolist()
    weights = {}
    for name, column in zip(vectoriser.get_feature_names_out(), columns, strict=True):
        if max(abs(w) for w in column) >= 0.005:
            weights[str(name)] = array("f", column)
    digest = hashlib.sha256("\n".join(f"{e.label}\t{e.subject}\t{e.body}" for e, _ in featurised)
                            .encode("utf-8")).hexdigest()[:16]
    trained = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "examples": len(featurised),
               "per_class": dict(sorted(Counter(labels).items())), "c": c, "min_count": min_count,
               "features": len(weights), "examples_digest": digest}
    return Model(classes, bias, weights, trained)


def folds(featurised: list[tuple[Example, Features]], k: int = 5, seed: int = 7):
    """k (train, held-out) splits, each class spread evenly over the folds."""
    by_label: dict[str, list[int]] = {}
    for i, (e, _) in enumerate(featurised):
        by_label.setdefault(e.label, []).append(i)
    fold_of = {}
    rng = random.Random(seed)
    for indices in by_label.values():
        rng.shuffle(indices)
        for n, i in enumerate(indices):
            fold_of[i] = n % k
    for f in range(k):
        train = [x for i, x in enumerate(featurised) if fold_of[i] != f]
        held = [x for i, x in enumerate(featurised) if fold_of[i] == f]
        yield train, held
