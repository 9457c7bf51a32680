"""The weight table the daemon scores with: one linear model over every category of every
department and the topics outside them (mobile and PBX matters, mail that is not IT work).

Scoring is a dictionary lookup and a few additions per feature, then a softmax: no numpy at
run time. The file (``rules/routing-model.json.gz``) is written by ``maild rules train``:
gzip of one JSON line, then the weights as raw little-endian float32, one row of
``len(classes)`` per feature, in the order of ``features``::

    {"format": 2, "classes": ["OSA|Принтер", ..., "telecom", "not-it"], "bias": [...],
     "features": ["w:принтер", ...], "trained": {...}}\n<float32 × features × classes>

Raw floats load straight into arrays: parsing 400,000 numbers as JSON cost 30 MB of heap
that a process never gave back. Features whose weights are all tiny are left out.
"""
from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import math
import os
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path

FORMAT = 2
MODEL_FILE = "routing-model.json.gz"


class ModelError(Exception):
    """The model file is missing, unreadable or of another format (worded for the admin)."""


@dataclass(frozen=True)
class Scores:
    """Probabilities of every class for one mail, best first, and what weighed most."""
    ranked: tuple[tuple[str, float], ...]
    contributions: dict[str, tuple[tuple[str, float], ...]]   # the best class -> (feature, weight) best first

    def probability(self, label: str) -> float:
        return next((p for c, p in self.ranked if c == label), 0.0)

    def top(self, n: int = 3) -> tuple[tuple[str, float], ...]:
        return self.ranked[:n]


# The model last read in this process, by (path, sha256): a process forked after reading it
# (the worker, the sender, the parser processes) uses the same pages instead of its own copy,
# and a policy snapshot pickled to a parser process arrives as this key (see __reduce__).
_LOADED: dict[tuple[str, str], Model] = {}


class Model:
    def __init__(self, classes: list[str], bias: list[float], weights: dict[str, array], trained: dict,
                 source: tuple[str, str] | None = None):
        self.classes = tuple(classes)
        self.bias = tuple(bias)
        self.weights = weights
        self.trained = trained
        self.source = source        # (path, sha256) of the file it was read from
        self._means: dict[str, float] | None = None

    def __reduce__(self):
        # The policy snapshot goes to the parser processes with every batch; a model read
        # from a file travels as its path and digest, and each process reads it once.
        if self.source is None:
            return (Model, (list(self.classes), list(self.bias), self.weights, self.trained))
        return (_shared, self.source)

    # -- scoring ---------------------------------------------------------------------------
    def score(self, features: dict[str, float], explain: int = 5) -> Scores:
        # Features of one group share one value: their rows are summed first (map(add) runs
        # in C), then scaled once. This is the daemon's whole cost of a decision.
        weights = self.weights
        by_value: dict[float, list] = {}
        present: list[tuple[str, float, array]] = []
        for name, value in features.items():
            row = weights.get(name)
            if row is not None:
                if name[0] != "c":                  # letter pieces weigh, but explain nothing to a person
                    present.append((name, value, row))
                by_value.setdefault(value, []).append(row)
        totals = list(self.bias)
        for value, rows in by_value.items():
            # zip(*rows) transposes and sum() adds in C: one pass per class, not per feature.
            totals = [t + value * s for t, s in zip(totals, map(sum, zip(*rows, strict=True)), strict=True)]
        top = max(totals)
        exps = [math.exp(t - top) for t in totals]
        norm = sum(exps)
        order = sorted(range(len(totals)), key=lambda i: -exps[i])
        ranked = tuple((self.classes[i], exps[i] / norm) for i in order)
        contributions = {}
        if explain:
            # What pushed the best class above the others: its weight against the classes' mean.
            best, means = order[0], self.means
            scored = heapq.nlargest(explain, ((name, value * (row[best] - means[name]))
                                              for name, value, row in present), key=lambda x: x[1])
            contributions[self.classes[best]] = tuple((f, round(w, 3)) for f, w in scored[:explain] if w > 0)
        return Scores(ranked, contributions)

    @property
    def means(self) -> dict[str, float]:
        if self._means is None:
            self._means = {name: sum(row) / len(row) for name, row in self.weights.items()}
        return self._means

    # -- the file --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Written whole to a temporary file, then renamed: a daemon never reads half a model."""
        names = sorted(self.weights)
        header = {"format": FORMAT, "classes": list(self.classes), "bias": list(self.bias),
                  "trained": self.trained, "features": names}
        matrix = array("f")
        for name in names:
            matrix.extend(self.weights[name])
        if sys.byteorder != "little":
            matrix.byteswap()
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wb", compresslevel=9) as out:
            out.write(json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
            out.write(matrix.tobytes())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Model:
        try:
            raw = Path(path).read_bytes()
            source = (str(path), hashlib.sha256(raw).hexdigest())
            if source in _LOADED:
                return _LOADED[source]      # forked from a process that read it: shared pages
            body = gzip.decompress(raw)
            line, _, floats = body.partition(b"\n")
            data = json.loads(line.decode("utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: missing: run 'maild rules train' to make it") from None
        except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
            raise ModelError(f"{path}: unreadable ({exc}): run 'maild rules train' to make it again") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f"{path}: not a routing model of format {FORMAT}: run 'maild rules train'")
        classes, names = data["classes"], data["features"]
        matrix = array("f")
        matrix.frombytes(floats)
        if sys.byteorder != "little":
            matrix.byteswap()
        n = len(classes)
        if len(matrix) != n * len(names):
            raise ModelError(f"{path}: truncated ({len(matrix)} weights for {len(names)} features × {n} classes): "
                             "run 'maild rules train'")
        weights = {name: matrix[i * n:(i + 1) * n] for i, name in enumerate(names)}
        model = cls(classes, data["bias"], weights, data.get("trained", {}), source)
        _LOADED.clear()
        _LOADED[source] = model
        return model


def _shared(path: str, digest: str) -> Model:
    # Changed since: the newer file, which the worker reloads next.
    return _LOADED.get((path, digest)) or Model.load(Path(path))
