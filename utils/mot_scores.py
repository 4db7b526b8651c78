"""Scores of a tracking run: per-method CLEAR-MOT/ID counts and HOTA over the samples, per-iteration curves,
ELBO terms, and the printed results table (``mixdvae_mot.py``)."""

from __future__ import annotations

import numpy as np
import torch

from utils.workers import forks, process_pool

COLUMNS = {"mota": "MOTA", "motp": "MOTP", "idf1": "IDF1", "idp": "IDP", "idr": "IDR", "num_switches": "IDs",
           "num_false_positives": "FP", "num_misses": "FN", "mostly_tracked": "MT", "partially_tracked": "PT",
           "mostly_lost": "ML", "num_fragmentations": "Frag", "hota": "HOTA", "deta": "DetA", "assa": "AssA"}
PERCENT = ("mota", "idf1", "idp", "idr", "hota", "deta", "assa")


class Scores:
    """Per-method motmetrics accumulators, HOTA inputs and per-iteration MOT counts over the dataset."""

    def __init__(self, iou_threshold: float):
        import utils.mot_eval as mot_eval

        self.ev = mot_eval
        self.iou_threshold = iou_threshold
        self.accs: dict[str, list] = {}
        self.hota: dict[str, list] = {}
        self.names: list[str] = []
        self.iter_counts: dict[str, dict[str, np.ndarray]] = {}
        self.elbo: dict[str, dict[str, np.ndarray]] = {}

    def __getstate__(self):          # picklable, to travel between ranks (the module is imported again)
        return {k: v for k, v in self.__dict__.items() if k != "ev"}

    def __setstate__(self, state):
        import utils.mot_eval as mot_eval

        self.__dict__.update(state, ev=mot_eval)

    def merge(self, later: Scores) -> None:
        """Append the scores of later samples, as if they had been added here after the others."""
        self.names.extend(later.names)
        for method in later.accs:
            self.accs.setdefault(method, []).extend(later.accs[method])
            self.hota.setdefault(method, []).extend(later.hota[method])
        for mine, theirs in ((self.iter_counts, later.iter_counts), (self.elbo, later.elbo)):
            for method, new in theirs.items():
                old = mine.get(method)
                mine[method] = new if old is None else {k: old[k] + v for k, v in new.items()}

    def add(self, method: str, gt: np.ndarray, tracks: np.ndarray) -> None:
        """Shape: gt (B, T, N, 4), tracks (B, T, S, 4), pixels."""
        accs = (self.ev.accumulate(g, h, self.iou_threshold) for g, h in zip(gt, tracks))
        self.accs.setdefault(method, []).extend(accs)
        self.hota.setdefault(method, []).extend(self.ev.hota_input(g, h) for g, h in zip(gt, tracks))

    def add_iterations(self, method: str, gt: np.ndarray, iter_tracks: np.ndarray) -> None:
        """MOT counts after every iteration, summed over samples. Shape: iter_tracks (I, B, T, S, 4)."""
        I, B = iter_tracks.shape[:2]
        counts = self.ev.mot_counts(np.broadcast_to(gt, (I, *gt.shape)).reshape(I * B, *gt.shape[1:]),
                                     iter_tracks.reshape(I * B, *iter_tracks.shape[2:]), self.iou_threshold)
        summed = {k: v.reshape(I, B).sum(1) for k, v in counts.items()}
        old = self.iter_counts.get(method)
        self.iter_counts[method] = summed if old is None else {k: old[k] + v for k, v in summed.items()}

    def add_elbo(self, method: str, elbo: dict[str, torch.Tensor]) -> None:
        """ELBO terms (n_iter, B), summed over samples (means are taken at the end)."""
        sums = {k: v.double().sum(1).cpu().numpy() for k, v in elbo.items()}
        old = self.elbo.get(method)
        self.elbo[method] = sums if old is None else {k: old[k] + v for k, v in sums.items()}

    def tables(self, workers: int = 1) -> dict:
        """:func:`utils.mot_eval.mot_summary` of every method, in method order; with ``workers`` > 1 the methods
        are summarised in that many worker processes (the same tables: it is the same computation)."""
        jobs = [(self.accs[m], self.names, self.hota[m]) for m in self.accs]
        workers = min(workers, len(jobs))
        if workers <= 1:
            return {m: self.ev.mot_summary(*job) for m, job in zip(self.accs, jobs)}
        global _JOBS
        _JOBS = jobs                     # forked workers read their job here: the accumulators are not pickled
        try:
            with process_pool(workers) as pool:
                done = pool.map(_summary_of, range(len(jobs))) if forks() else pool.map(_summary, jobs)
                return dict(zip(self.accs, done))
        finally:
            _JOBS = []

    def iteration_curves(self) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for method, c in self.iter_counts.items():
            objects = np.maximum(c["num_objects"], 1)
            out[method] = {"mota": 1.0 - (c["num_misses"] + c["num_false_positives"] + c["num_switches"]) / objects,
                           "idf1": 2.0 * c["idtp"] / np.maximum(c["num_objects"] + c["num_predictions"], 1)}
        return out


def results_table(tables: dict, num_samples: int) -> str:
    """ONE table: rows = methods, columns = the §8.1 metrics over the dataset (motmetrics OVERALL)."""
    import pandas as pd

    rows = {}
    for method, table in tables.items():
        overall = table.loc["OVERALL"]
        rows[method] = {label: (100 * overall[key] if key in PERCENT else overall[key])
                        for key, label in COLUMNS.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    counts = [COLUMNS[k] for k in ("num_switches", "num_false_positives", "num_misses", "mostly_tracked",
                                   "partially_tracked", "mostly_lost", "num_fragmentations")]
    frame[counts] = frame[counts].astype(int)
    header = (f"{num_samples} samples; MOTA, IDF1, IDP, IDR, HOTA, DetA, AssA in %; MOTP = mean (1 - IoU) of "
              "matches (lower is better); IDs, FP, FN, Frag counts; MT/PT/ML targets")
    return header + "\n" + frame.to_string(float_format=lambda v: f"{v:.2f}") + "\n"

_JOBS: list[tuple] = []                  # the jobs of the running Scores.tables, for its forked workers


def _summary_of(index: int):
    return _summary(_JOBS[index])


def _summary(job: tuple):
    from utils.mot_eval import mot_summary

    return mot_summary(*job)
