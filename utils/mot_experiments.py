"""Run MOT methods on a data split and score them per sample: the machinery of the tuning script and the
results tables (``tools/tune_mot.py``, ``tools/mot_results_table.py``).

A method is a :class:`MethodSpec` (MixDVAE with a checkpoint, KF-VEM filter or smoother, SORT-style) with
its own settings. :func:`run_method` tracks every sample of a split, :func:`score_samples` returns
per-sample counts (the CLEAR-MOT/ID counts motmetrics would give, and TrackEval's HOTA), and
:func:`dataset_metrics` / :func:`bootstrap_ci` turn them into dataset-level values with 95 % intervals:
MOTA = 1 - (FN + FP + IDSW) / GT and IDF1 = 2 IDTP / (GT + predictions) from summed counts, HOTA = the
mean of the per-sample HOTA.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from data.mot_dataset import MOTSampleDataset, collate_mot
from model.dvae_choice import DVAEChoice, run_row
from model.kf_vem import KalmanDynamics
from model.vem_mot import SRNNDynamics, VEMSettings
from utils.checkpoint import load_dvae
from utils.errors import UserError
from utils.mot_eval import IOU_THRESHOLD, hota_per_sample, mot_counts

KINDS = {"mixdvae": "MixDVAE", "kf_filter": "KF-VEM-filter", "kf_smoother": "KF-VEM-smoother", "sort": "SORT"}
COUNT_KEYS = ("num_objects", "num_predictions", "num_misses", "num_false_positives", "num_switches", "idtp")


@dataclass(frozen=True)
class MethodSpec:
    """One row of a table: a method and its own settings.

    Attributes:
        label: row name, e.g. "MixDVAE-causal" or "KF-VEM-filter".
        kind: one of :data:`KINDS`.
        checkpoint: MixDVAE's DVAE checkpoint path (None for the other kinds); several joined by "+" choose the DVAE
            per sequence (:class:`model.dvae_choice.DVAEChoice`).
        assignment_temperature, init_subseq_len: E-W tau (5.2) and initialisation windows (5.7).
        z_mode: MixDVAE's E-Z (5.3), "sample" or "mean".
        dvae_var_scale: MixDVAE's E-S variance inflation (sigma^2_theta x this, 5.4).
        dvae_es: MixDVAE's E-S, "filter", "propagate" or "smoother" (:class:`model.fast_srnn.FastSRNN`).
        dvae_es_var: the variance of MixDVAE's E-S prediction, "model" (sigma^2_theta) or "fixed".
        accel_std_ratio, init_vel_std_ratio: KF-VEM process noise and frame-1 velocity prior (§7).
        clutter_logprob: the VEM's clutter class (5.2); None = the runner's base setting.
        option_var_scales: with several checkpoints, the E-S variance scale of each (None = dvae_var_scale for all).
        choice_score: with several checkpoints, how the runs are judged (:data:`model.dvae_choice.SCORES`;
            None = "own").
    """

    label: str
    kind: str
    checkpoint: str | None = None
    assignment_temperature: float = 0.1
    init_subseq_len: int = 30
    z_mode: str = "sample"
    dvae_var_scale: float = 1.0
    dvae_es: str = "filter"
    dvae_es_var: str = "model"
    accel_std_ratio: float = 0.01
    init_vel_std_ratio: float = 0.1
    clutter_logprob: float | None = None
    option_var_scales: tuple[float, ...] | None = None
    choice_score: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"method {self.label!r}: unknown kind {self.kind!r} (choose from {', '.join(KINDS)})")
        if self.kind == "mixdvae" and not self.checkpoint:
            raise UserError(f"method {self.label!r}: MixDVAE needs a checkpoint path")
        if self.option_var_scales is not None and len(self.option_var_scales) != len(self.checkpoint.split("+")):
            raise UserError(f"method {self.label!r}: option_var_scales needs one value per DVAE of the choice")

    def settings(self) -> dict:
        """The settings that matter for this kind (for CSV/JSON/markdown)."""
        kf = ("assignment_temperature", "init_subseq_len", "accel_std_ratio", "init_vel_std_ratio", "clutter_logprob")
        keys = {"mixdvae": ("checkpoint", "assignment_temperature", "init_subseq_len", "z_mode", "dvae_var_scale",
                            "dvae_es", "dvae_es_var", "clutter_logprob", "option_var_scales", "choice_score"),
                "kf_filter": kf, "kf_smoother": kf, "sort": ()}[self.kind]
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    def with_settings(self, values: dict) -> MethodSpec:
        """A copy with the known keys of ``values`` replaced (other keys are ignored)."""
        names = {f.name for f in fields(self)} - {"label", "kind"}
        return replace(self, **{k: v for k, v in values.items() if k in names and v is not None})


def parse_dvae(text: str) -> tuple[str, str]:
    """``NAME=PATH`` -> ("MixDVAE-NAME", PATH); a bare ``PATH`` -> ("MixDVAE", PATH)."""
    name, sep, path = text.partition("=")
    if not sep:
        return "MixDVAE", text
    if not name.strip() or not path.strip():
        raise UserError(f"--dvae {text!r}: expected NAME=PATH or PATH")
    return f"MixDVAE-{name.strip()}", path.strip()


def reference_vem_settings(ini: str | Path = "config/cfg_dvae_vem_mot.ini", **overrides) -> VEMSettings:
    """VEM settings of the reference config ([VEM] N_iter_total, init_iter_number, std_ratio, clutter_logprob,
    [DataFrame] normalize, normalize_range); ``overrides`` (VEMSettings fields, None = keep) win."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(ini):
        raise UserError(f"config {ini} not found (give --config)")
    try:
        vem, frame = parser["VEM"], parser["DataFrame"]
        clutter = vem.get("clutter_logprob", "").strip()
        base = VEMSettings(n_iter=int(vem["N_iter_total"]), init_iter=int(vem["init_iter_number"]),
                           init_subseq_len=int(vem["init_subseq_len"]), std_ratio=float(vem["std_ratio"]),
                           temperature=float(vem["assignment_temperature"]),
                           clutter_logprob=float(clutter) if clutter else None,
                           normalize=frame["normalize"].strip(),
                           normalize_range=tuple(float(v) for v in frame["normalize_range"].split(",")),
                           log_elbo=False, save_all_iters=False)
    except (KeyError, ValueError) as err:
        raise UserError(f"{ini}: cannot read the [VEM]/[DataFrame] settings ({err})") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def load_split(data_dir: str | Path) -> dict:
    """Every sample of a directory as one batch (:func:`data.mot_dataset.collate_mot`)."""
    dataset = MOTSampleDataset(data_dir)
    return collate_mot([dataset[i] for i in range(len(dataset))])


class MethodRunner:
    """Runs :class:`MethodSpec` s on batches; loads each DVAE checkpoint once."""

    def __init__(self, base: VEMSettings, batch_size: int = 300, seed: int = 0, upsample: int = 1):
        self.base, self.batch_size, self.seed, self.upsample = base, batch_size, seed, upsample
        self.models: dict[str, torch.nn.Module] = {}

    def model(self, path: str):
        if path not in self.models:
            self.models[path] = load_dvae(Path(path), head="gaussian", where="--dvae")[0]
        return self.models[path]

    def dynamics(self, spec: MethodSpec):
        if spec.kind == "mixdvae":
            paths = spec.checkpoint.split("+")
            scales = spec.option_var_scales or (spec.dvae_var_scale,) * len(paths)
            options = [SRNNDynamics(self.model(path), z_mode=spec.z_mode, var_scale=scale,
                                    es_mode=spec.dvae_es, es_var=spec.dvae_es_var)
                       for path, scale in zip(paths, scales)]
            return options[0] if len(options) == 1 else DVAEChoice(options, score=spec.choice_score or "own")
        return KalmanDynamics(spec.accel_std_ratio, spec.init_vel_std_ratio, smooth=spec.kind == "kf_smoother")

    def run(self, spec: MethodSpec, batch: dict) -> np.ndarray:
        """Tracks of every sample, (B, T, N, 4) pixels. Seeded: the same spec gives the same tracks."""
        from model.sort_tracker import sort_track

        if spec.kind == "mixdvae":            # load before seeding: building an SRNN draws its initial weights
            for path in spec.checkpoint.split("+"):
                self.model(path)
        torch.manual_seed(self.seed)
        settings = replace(self.base, temperature=spec.assignment_temperature,
                           init_subseq_len=spec.init_subseq_len, save_all_iters=False, log_elbo=False)
        if spec.clutter_logprob is not None:
            settings = replace(settings, clutter_logprob=spec.clutter_logprob)
        out = []
        for start in range(0, batch["det"].shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            det, mask, init = batch["det"][sl], batch["det_mask"][sl], batch["init"][sl]
            if spec.kind == "sort":
                out.append(sort_track(det, mask, init).numpy())
            else:
                result = run_row(self.dynamics(spec), det, mask, init, settings, batch["image_size"][sl],
                                 self.upsample)
                out.append(result.tracks.numpy())
        return np.concatenate(out)


def score_samples(gt, tracks, iou_threshold: float = IOU_THRESHOLD) -> dict[str, np.ndarray]:
    """Per-sample counts (:data:`COUNT_KEYS`, as motmetrics counts them) and HOTA/DetA/AssA (TrackEval's).

    Shape: gt (B, T, N, 4), tracks (B, T, S, 4) -> dict of (B,) arrays.
    """
    counts = mot_counts(gt, tracks, iou_threshold)
    return {**{k: counts[k] for k in COUNT_KEYS}, **hota_per_sample(gt, tracks)}


def mean_over_runs(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-sample counts and HOTA averaged over runs of one method (e.g. VEM seeds: MixDVAE samples z).

    The bootstrap then resamples samples, each with its expected counts, so the interval is over data, not
    over seeds. Shape: each run key -> (B,); returns key -> (B,) float.
    """
    if not runs:
        raise ValueError("mean_over_runs needs at least one run")
    return {k: np.mean([np.asarray(r[k], dtype=np.float64) for r in runs], axis=0) for k in runs[0]}


def seeded_scores(runners: list[MethodRunner], spec: MethodSpec, batch: dict,
                  iou_threshold: float = IOU_THRESHOLD) -> dict[str, np.ndarray]:
    """Per-sample scores of ``spec`` (:func:`score_samples`) averaged over the runners' VEM seeds; the rows that draw
    nothing (KF-VEMs, SORT) run once, with the first runner."""
    gt = batch["gt"].numpy()
    used = runners if spec.kind == "mixdvae" else runners[:1]
    return mean_over_runs([score_samples(gt, r.run(spec, batch), iou_threshold) for r in used])


def dataset_metrics(per_sample: dict[str, np.ndarray], index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """MOTA, IDF1 (from summed counts), IDs (summed) and HOTA (mean over samples) of the samples ``index``.

    ``index`` (R, B') draws R datasets at once (bootstrap); None = the dataset itself.
    Returns fractions (MOTA, IDF1, HOTA) and counts (IDs), each () or (R,).
    """
    take = (lambda v: v) if index is None else (lambda v: v[index])
    total = {k: take(per_sample[k]).sum(-1) for k in COUNT_KEYS}
    gt = np.maximum(total["num_objects"], 1)
    mota = 1.0 - (total["num_misses"] + total["num_false_positives"] + total["num_switches"]) / gt
    idf1 = 2.0 * total["idtp"] / np.maximum(total["num_objects"] + total["num_predictions"], 1)
    return {"mota": mota, "idf1": idf1, "ids": total["num_switches"], "hota": take(per_sample["hota"]).mean(-1)}


def bootstrap_ci(per_sample: dict[str, np.ndarray], num_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 chunk: int = 200) -> dict[str, tuple[float, float, float]]:
    """Dataset value and percentile bootstrap interval (resampling samples with replacement) per metric.

    Returns:
        metric -> (value, low, high); MOTA, IDF1, HOTA as fractions, IDs as a count.
    """
    B = len(per_sample["hota"])
    rng = np.random.default_rng(seed)
    draws: dict[str, list] = {}
    for start in range(0, num_boot, chunk):
        index = rng.integers(0, B, size=(min(chunk, num_boot - start), B))
        for k, v in dataset_metrics(per_sample, index).items():
            draws.setdefault(k, []).append(v)
    point = dataset_metrics(per_sample)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for k, v in draws.items():
        low, high = np.percentile(np.concatenate(v), q)
        out[k] = (float(point[k]), float(low), float(high))
    return out
