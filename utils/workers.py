"""Worker processes for the metric computations (CPU-bound numpy/scipy/pandas work, no torch)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def metric_workers(setting: int, world: int = 1) -> int:
    """Worker processes for the metrics: ``setting`` if positive, else (0 = auto) the CPU cores this process
    may use, shared among ``world`` processes of one run (torchrun ranks scoring at the same time), at least 1."""
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(world, 1))


def forks() -> bool:
    """Whether :func:`process_pool` forks (its workers then see this process's memory as it was at the fork)."""
    return "fork" in multiprocessing.get_all_start_methods()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, forked where the platform allows it: the metric workers run
    numpy/scipy/pandas only, never torch, and a forked worker starts in milliseconds."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork" if forks() else "spawn"))
