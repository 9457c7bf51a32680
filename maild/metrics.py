"""Metrics in the Prometheus text format (prometheus-client), for ``[metrics] listen``.

What is counted, by the process that sees it, labelled with the cluster node:
``maild_accepted_total`` (listeners: mail answered 250), ``maild_messages_total{disposition}``
and ``maild_processing_seconds`` (worker: from the 250 to the committed ticket),
``maild_relay_total{result}`` (sender: sent, deferred, failed). Queue depths are read when
scraped: ``maild_spool_waiting``, ``maild_outbox_due``, ``maild_outbox_failed``.

The processes of ``maild serve`` share the counts through prometheus-client's multiprocess
mode (a directory of memory-mapped files under data_dir, emptied at each start); the parent
serves them on the local port. Without ``[metrics] listen`` nothing of it is imported and
every call is a no-op: the daemon's footprint stays as it was.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """The no-op: what every process has when metrics are off."""

    def accepted(self) -> None:
        """A message answered 250."""

    def message(self, disposition: str, seconds: float) -> None:
        """A message processed: what became of it, ``seconds`` after it was accepted."""

    def relayed(self, sent: int, deferred: int, failed: int) -> None:
        """A round of the sender."""


class PrometheusMetrics(Metrics):
    def __init__(self, node: str):
        from prometheus_client import Counter, Histogram
        self.node = node
        # registry=None: in multiprocess mode the values live in the shared files, and a forked
        # child making its own would otherwise collide with the parent's in the global registry.
        self._accepted = Counter("maild_accepted", "Messages answered 250 by SMTP intake.", ["node"], registry=None)
        self._messages = Counter("maild_messages", "Messages processed, by what became of them.",
                                 ["node", "disposition"], registry=None)
        self._latency = Histogram("maild_processing_seconds", "From the 250 to the committed ticket.", ["node"],
                                  buckets=LATENCY_BUCKETS, registry=None)
        self._relay = Counter("maild_relay", "Outgoing mail handed on, by result.", ["node", "result"],
                              registry=None)

    def accepted(self) -> None:
        self._accepted.labels(self.node).inc()

    def message(self, disposition: str, seconds: float) -> None:
        self._messages.labels(self.node, disposition).inc()
        self._latency.labels(self.node).observe(max(0.0, seconds))

    def relayed(self, sent: int, deferred: int, failed: int) -> None:
        for result, n in (("sent", sent), ("deferred", deferred), ("failed", failed)):
            if n:
                self._relay.labels(self.node, result).inc(n)


def prepare(directory: Path) -> None:
    """In ``serve``'s parent, before any child is forked: an empty directory for the counts of
    this run, named to every process by the environment (prometheus-client reads it there)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)


def for_process(enabled: bool, node: str) -> Metrics:
    return PrometheusMetrics(node) if enabled and os.environ.get(ENV) else Metrics()


def serve(host: str, port: int, node: str, depths: Callable[[], dict[str, float]]) -> None:
    """The local HTTP endpoint (a thread of the parent): every process's counts, and the
    queue depths read now."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector

    class Depths:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            for name, value in depths().items():
                family = GaugeMetricFamily(f"maild_{name}", f"maild's {name.replace('_', ' ')} now", labels=["node"])
                family.add_metric([node], value)
                yield family

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(Depths())
    start_http_server(port, addr=host, registry=registry)
