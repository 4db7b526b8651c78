"""Collect per-item metric rows and summarise them per method (§8.2).

One row per (item, method): ``tracker.add("mix_0003", "NMF", metrics)`` where ``metrics`` is
a flat dict such as :func:`utils.audio_metrics.get_metrics` returns (keys ``s1_si_sdr``,
``input_s1_si_sdr``, ``s1_si_sdr_i``...). Nothing here knows the metric or method names;
they come from the rows. Outputs:

- ``metrics_per_item.csv``: the rows as they were added;
- ``summary.json``: ``{..header.., "methods": {method: {metric: stats}}}``; stats are mean, median,
  95 % CI half-width ``1.96 * std / sqrt(n)`` and n, NaNs ignored (n counts the non-NaN values);
- ``summary.txt``: the means as text tables (rows = methods, one table per source).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from collections.abc import Mapping

import numpy as np
import pandas as pd

from utils.output_dir import atomic_write

# Column order and labels for known metrics; unknown metrics follow in the order first seen.
_ORDER = ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar", "rmse")
_LABELS = {"si_sdr": "SI-SDR", "pesq": "PESQ", "estoi": "ESTOI", "sdr": "SDR", "sir": "SIR",
           "sar": "SAR", "rmse": "RMSE"}
_SOURCE_KEY = re.compile(r"^(s\d+)_(.+)$")
_ID_COLUMNS = ("item", "method")


class MetricTracker:
    """Accumulates one metrics row per (item, method) and reports per-method statistics."""

    def __init__(self):
        self._rows: list[dict] = []

    def add(self, item: str, method: str, metrics: Mapping[str, float]) -> None:
        """Record the metrics of ``method`` on ``item`` (a flat ``{name: value}`` dict)."""
        self._rows.append({"item": item, "method": method, **{k: float(v) for k, v in metrics.items()}})

    @property
    def frame(self) -> pd.DataFrame:
        """All rows, columns ``item, method, <metrics in first-seen order>``."""
        return pd.DataFrame(self._rows, columns=_columns(self._rows))

    @property
    def methods(self) -> list[str]:
        """Method names in the order they were first added."""
        return list(dict.fromkeys(row["method"] for row in self._rows))

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per method and metric: ``{"mean", "median", "ci95", "n"}`` over items, NaNs ignored.

        ``ci95 = 1.96 * std / sqrt(n)`` with the sample std (ddof = 1); NaN when n < 2.
        Mean and median are NaN when no item has a value.
        """
        frame = self.frame
        metrics = [c for c in frame.columns if c not in _ID_COLUMNS]
        out: dict[str, dict[str, dict[str, float]]] = {}
        for method, group in frame.groupby("method", sort=False):
            values = group[metrics]
            n = values.count()
            std = values.std(ddof=1)
            ci95 = (1.96 * std / np.sqrt(n)).where(n >= 2)
            out[method] = {m: {"mean": float(values[m].mean()), "median": float(values[m].median()),
                               "ci95": float(ci95[m]), "n": int(n[m])} for m in metrics}
        return out

    def table(self) -> str:
        """Human-readable means: one table per source, rows = methods, columns = metrics then
        improvements (e.g. ``SI-SDR ... SAR  SI-SDRi ... SARi``); ``input_`` columns are omitted."""
        summary = self.summary()
        blocks: dict[str, list[str]] = {}  # source ("s1", or "" for keys without one) -> metrics
        for key in _columns(self._rows)[len(_ID_COLUMNS):]:
            if key.startswith("input_"):
                continue
            match = _SOURCE_KEY.match(key)
            source, name = (match.group(1), match.group(2)) if match else ("", key)
            blocks.setdefault(source, []).append(name)
        counts = self.frame.groupby("method", sort=False).size()
        parts = []
        for source, names in blocks.items():
            names = sorted(names, key=_display_rank)
            keys = [f"{source}_{name}" if source else name for name in names]
            means = pd.DataFrame({_label(name): [summary[m][k]["mean"] for m in self.methods]
                                  for name, k in zip(names, keys)},
                                 index=pd.Index(self.methods, name="method"))
            means.insert(0, "items", counts[self.methods].to_numpy())
            title = f"source {source}" if source else "all sources"
            parts.append(f"{title} (mean over items, NaNs ignored)\n"
                         + means.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-"))
        return "\n\n".join(parts) + "\n"

    def save(self, out_dir: str | Path, header: Mapping | None = None, table: str | None = None) -> list[Path]:
        """Write ``metrics_per_item.csv``, ``summary.json`` and ``summary.txt`` into ``out_dir`` (atomically).

        Args:
            header: entries of ``summary.json`` before ``"methods"`` (run settings, provenance).
            table: the text of ``summary.txt`` (default :meth:`table`).

        Returns:
            The paths written.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "metrics_per_item.csv", out_dir / "summary.json", out_dir / "summary.txt"]
        atomic_write(paths[0], self.frame.to_csv(index=False))
        summary = {**(header or {}), "methods": self.summary()}
        atomic_write(paths[1], json.dumps(_nan_to_none(summary), indent=2, default=str) + "\n")
        atomic_write(paths[2], self.table() if table is None else table)
        return paths


def _columns(rows: list[dict]) -> list[str]:
    keys = dict.fromkeys(_ID_COLUMNS)
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


def _display_rank(name: str) -> tuple[int, int]:
    """Metrics first, then improvements; known metrics in ``_ORDER``, unknown ones after (stable)."""
    is_gain = name.endswith("_i")
    base = name[:-2] if is_gain else name
    return int(is_gain), _ORDER.index(base) if base in _ORDER else len(_ORDER)


def _label(name: str) -> str:
    base = name[:-2] if name.endswith("_i") else name
    if base not in _LABELS:
        return name
    return _LABELS[base] + ("i" if base != name else "")


def _nan_to_none(tree):
    """JSON has no NaN: map NaN to null."""
    if isinstance(tree, dict):
        return {k: _nan_to_none(v) for k, v in tree.items()}
    return None if isinstance(tree, float) and math.isnan(tree) else tree
