"""Prometheus metrics shared by the API and the agent: build info, the exposition, multiprocess mode.

Names follow Prometheus conventions (reference/ovn.md §6): the ``portsec_`` prefix,
``_total`` on counters, base units (``_seconds``), bounded label values.

With ``portsec serve --workers N`` each worker is its own process, and a scrape
reaches one of them: prometheus-client's multiprocess mode makes every process
(workers and the agent in the parent) write its values to files in one
directory, and any worker's ``/metrics`` sums them. The directory must be known
before a process creates its metrics, so serve sets it up first
(:func:`multiprocess_dir`) and the workers inherit it through the environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for it
CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # no *_created series: a start time per label set, which no dashboard here reads

# Latency buckets (seconds) for things measured in milliseconds: a round, a request, a bundle.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _version() -> str:
    try:
        return metadata.version("portsec")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# "max": every process sets 1, and a sum over the workers would say N.
BUILD_INFO = Gauge("portsec_build_info", "portsec's version, as a label; the value is 1", ["version"],
                   multiprocess_mode="max")  # fmt: skip
BUILD_INFO.labels(_version()).set(1)


def exposition() -> bytes:
    """The text format of every metric of this process, or of every process of the server in multiprocess mode."""
    if os.environ.get(ENV_MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """With several workers: a private directory for the processes' values, removed at exit; else nothing."""
    if workers <= 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="portsec-metrics-")
    previous = os.environ.get(ENV_MULTIPROC_DIR)
    os.environ[ENV_MULTIPROC_DIR] = path
    # prometheus-client picks its value class when first imported: pick again, for the metrics made from now on.
    values.ValueClass = values.get_value_class()
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV_MULTIPROC_DIR, None)
        else:
            os.environ[ENV_MULTIPROC_DIR] = previous
        values.ValueClass = values.get_value_class()
        shutil.rmtree(path, ignore_errors=True)
