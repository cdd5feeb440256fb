"""The multiprocess metrics files: a dead worker's are merged, and scrapes read them under a lock.

prometheus_client gives every worker process files of its own (`counter_<pid>.db`,
`histogram_<pid>.db`, ...) and keeps a dead worker's files for good, since its counts must
still add up: each worker restart left more files for every scrape to read. When a worker
exits, gunicorn's master (`child_exit` in gunicorn.conf.py) adds its counters, histograms and
summaries into one aggregate file per type (`counter_aggregate.db`, read by prometheus_client
like any other) and removes its files; its live gauges are dropped as before
(`mark_process_dead`). The number of files stays the live workers' plus one per type.

A merge writes one file and removes another; a scrape between the two would count the dead
worker twice. Merges take an exclusive lock on `merge.lock` in the directory, and
`LockedMultiProcessCollector` reads under a shared one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections import defaultdict
from typing import Iterator

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict

SUMMED_TYPES = ("counter", "histogram", "summary")  # whose samples add up across processes
AGGREGATE_NAME = "aggregate"  # stands where a pid stands in the file name
LOCK_FILE = "merge.lock"
PARTIAL_SUFFIX = ".partial"  # not *.db: never read while it is being written


def merge_dead_worker(directory: str, pid: int) -> None:
    """Fold a dead worker's samples into the aggregate files and remove its own."""
    multiprocess.mark_process_dead(pid, directory)
    with _merge_lock(directory, fcntl.LOCK_EX):
        for kind in SUMMED_TYPES:
            dead_file = os.path.join(directory, f"{kind}_{pid}.db")
            if os.path.exists(dead_file):
                _fold_into_aggregate(directory, kind, dead_file)


def _fold_into_aggregate(directory: str, kind: str, dead_file: str) -> None:
    aggregate = os.path.join(directory, f"{kind}_{AGGREGATE_NAME}.db")
    totals: dict[str, float] = defaultdict(float)
    for path in (aggregate, dead_file):
        if os.path.exists(path):
            for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
                totals[key] += value
    partial = aggregate + PARTIAL_SUFFIX
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)  # left by a master that died mid-merge
    merged = MmapedDict(partial)
    try:
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    os.replace(partial, aggregate)
    os.remove(dead_file)


class LockedMultiProcessCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's collector, reading while no merge is half done."""

    def __init__(self, registry: object, path: str) -> None:
        super().__init__(registry, path=path)
        self.directory = path

    def collect(self) -> list:
        """Every process's samples merged, as prometheus_client does, under the shared lock."""
        with _merge_lock(self.directory, fcntl.LOCK_SH):
            return list(super().collect())


@contextlib.contextmanager
def _merge_lock(directory: str, mode: int) -> Iterator[None]:
    with open(os.path.join(directory, LOCK_FILE), "a") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
