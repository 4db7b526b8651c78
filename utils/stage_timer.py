"""Wall time of a run split into stages (data loading, VEM, baselines, metrics...), for summary.json and the log.

    timer = StageTimer()
    with timer("data loading"):
        batch = next(loader)
    timer.add("VEM", seconds)                      # a time measured elsewhere (e.g. in another rank)
    log(timer.line())                               # "time: data loading 1.2 s (3 %), VEM 30.1 s (80 %), ..."
    summary["timing"] = timer.as_dict()             # {"stages": {...}, "total_s": ..., "other_s": ...}

Stages keep the order in which they were first timed; repeated stages accumulate. ``total`` is the wall time
since the timer was made (or since ``start``), and "other" whatever the stages did not cover.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class StageTimer:
    """Accumulates wall-clock seconds per named stage."""

    def __init__(self, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + float(seconds)

    def merge(self, seconds: dict[str, float]) -> None:
        """Add every stage of ``seconds`` (e.g. the stage times a batch reported)."""
        for stage, value in seconds.items():
            self.add(stage, value)

    def iterate(self, iterable: Iterable[T], stage: str) -> Iterator[T]:
        """Yield the items of ``iterable``, timing the production of each (a data loader's) as ``stage``."""
        it = iter(iterable)
        while True:
            with self(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item

    def total(self) -> float:
        return time.perf_counter() - self.start

    def as_dict(self) -> dict:
        total = self.total()
        stages = {k: round(v, 3) for k, v in self.seconds.items()}
        return {"stages_s": stages, "total_s": round(total, 3),
                "other_s": round(max(0.0, total - sum(self.seconds.values())), 3)}

    def line(self) -> str:
        """One log line: every stage and "other" with its share of the total wall time."""
        d = self.as_dict()
        total = max(d["total_s"], 1e-9)
        stages = {**d["stages_s"], "other": d["other_s"]}
        parts = [f"{k} {v:.1f} s ({100 * v / total:.0f} %)" for k, v in stages.items()]
        return f"wall time {d['total_s']:.1f} s: " + ", ".join(parts)
