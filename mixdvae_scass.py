"""Separate flute + speech mixtures with MixDVAE and score it next to NMF, the mixture and the IBM.

    python mixdvae_scass.py config/cfg_dvae_vem_scass.ini

DESIGN §6 (VEM), §7 (baselines), §8.2 (metrics), §10 (outputs). Everything is validated
first (INI, DVAE checkpoints against [Network]/[STFT], num_freqency, mixtures, NMF training
audio); only then is ``save_root/SC-ASS_<name>_<timestamp>/`` created, holding the INI copy,
log.txt, ``audio/`` (separated wavs of the first mixtures: mixture, references, one estimate
per method and source), ``figures/`` (spectrograms with the eta mask; SI-SDR per VEM
iteration), metric_per_iteration.csv, metrics_per_item.csv, metrics_summary.json and
summary.txt (the table printed at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

# BSS-eval (mir_eval) solves many small linear systems: with OpenBLAS's default of one thread per
# core they ran 5x slower (1.2 s vs 0.24 s per mixture) on a 2-core machine whose other core was
# busy. Set OPENBLAS_NUM_THREADS to override. Must happen before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.mixture_dataset import MixtureDataset, collate
from model.nmf import SupervisedNMF
from model.oracle import ibm_estimates
from model.srnn import SRNN
from model.vem_scass import VEMOptions, run_vem
from utils.audio_metrics import get_metrics, improvements, mixture_row, si_sdr
from utils.checkpoint import load_dvae, read_checkpoint
from utils.config import Config, comma_list, load_config
from utils.config_keys_scass import BASELINES, METRICS, SOURCE_NAMES, VEM_SCASS
from utils.distributed import start
from utils.errors import UserError, run_main
from utils.metric_tracker import MetricTracker
from utils.output_dir import atomic_write_bytes
from utils.run_dir import LogBuffer, check_output_root, get_logger, make_run_dir, route_library_logs
from utils.stft import STFT

# utils.audio_io (scipy.signal) and utils.scass_plots (matplotlib) are imported where they are
# used: together they take seconds to import, and a run refused at validation should answer fast.

METHOD_ORDER = ("MixDVAE", "NMF", "Mixture", "IBM")
TABLE_METRICS = ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar")   # RMSE stays in the CSV / JSON
LABELS = {"si_sdr": "SI-SDR", "pesq": "PESQ", "estoi": "ESTOI", "sdr": "SDR", "sir": "SIR", "sar": "SAR",
          "rmse": "RMSE"}

# --------------------------------------------------------------------------- validation
def load_cfg(path: str) -> tuple[Config, dict]:
    """Parse and validate the INI; returns the config and the parsed comma lists."""
    cfg = load_config(path, VEM_SCASS)
    if cfg["User"]["task_name"] != "SC-ASS":
        raise UserError(f"{cfg.path} [User] task_name: mixdvae_scass.py needs SC-ASS, got {cfg['User']['task_name']}")
    ev = cfg["Eval"]
    lists = {"baselines": comma_list(ev["baselines"], BASELINES, f"{cfg.path} [Eval] baselines"),
             "metrics": comma_list(ev["metrics"], METRICS, f"{cfg.path} [Eval] metrics")}
    if not lists["metrics"]:
        raise UserError(f"{cfg.path} [Eval] metrics: expected at least one of {', '.join(METRICS)}")
    check_output_root(cfg["User"]["save_root"], f"{cfg.path} [User] save_root")
    return cfg, lists


def check_num_freqency(cfg: Config, stft: STFT) -> None:
    """[VEM] num_freqency must equal the STFT's F and the [Network] x_dim (exit 2 naming the key)."""
    num_f = cfg["VEM"]["num_freqency"]
    if num_f != stft.num_freqs:
        raise UserError(f"{cfg.path} [VEM] num_freqency = {num_f} but the [STFT] settings give "
                        f"F = nfft/2 + 1 = {stft.num_freqs}")
    if cfg["Network"]["x_dim"] != num_f:
        raise UserError(f"{cfg.path} [VEM] num_freqency = {num_f} but [Network] x_dim = {cfg['Network']['x_dim']}")


def load_dvaes(cfg: Config, device: torch.device) -> tuple[list[SRNN], list[dict]]:
    """The two pre-trained DVAEs (flute, speech), checked against num_freqency, [Network] and [STFT]."""
    dvaes, ckpts = [], []
    num_f = cfg["VEM"]["num_freqency"]
    for key in ("saved_dvae_s1", "saved_dvae_s2"):
        path = Path(cfg["Training"][key])
        x_dim = read_checkpoint(path)["network"].get("x_dim")
        if x_dim != num_f:
            raise UserError(f"{cfg.path} [VEM] num_freqency = {num_f} but checkpoint {str(path)!r} "
                            f"([Training] {key}) has x_dim = {x_dim}")
        model, ckpt = load_dvae(path, network=cfg["Network"], stft=cfg.section("STFT"), head="is",
                                where=f"{cfg.path}")
        dvaes.append(model.to(device))
        ckpts.append(ckpt)
    return dvaes, ckpts


def vem_options(cfg: Config) -> VEMOptions:
    vem, tr = cfg["VEM"], cfg["Training"]
    return VEMOptions(n_iter=vem["N_iter_total"], ratio_v_theta_x=vem["ratio_v_theta_x"],
                      v_x_floor=vem["v_x_floor"], es_power=vem["es_power"], z_mode=vem["z_mode"],
                      finetune=tr["finetune"], lr=tr["lr"], beta=tr["beta"],
                      mixture_power_db=vem["mixture_power_db"])


# --------------------------------------------------------------------------- NMF baseline
def nmf_baseline(cfg: Config, stft: STFT, log) -> SupervisedNMF:
    """Supervised NMF (§7): dictionaries learned on the sources' training audio, cached on disk.

    The cache (``cache_file`` + a ``.json`` sidecar) is keyed on the NMF settings, the STFT and
    the training files (names and content hashes); any change refits, with a notice.
    When the training directories are absent, a cache learned with the same settings is used
    as it is (e.g. dictionaries shipped next to the checkpoints).
    """
    from data.audio_dataset import SpectrogramDataset
    from utils.audio_io import list_audio_files

    sec = cfg["NMF"]
    keys = ("train_dir_s1", "train_dir_s2")
    dirs = [Path(sec[key]) for key in keys]
    settings = {"nmf": {k: sec[k] for k in ("n_components", "beta", "iterations", "iterations_separation",
                                            "max_frames")},
                "seed": cfg["Training"]["seed"], "stft": {k: v for k, v in stft.as_dict().items() if k != "trim"}}
    settings_digest = _digest(settings)
    if str(sec["cache_file"]):
        cache = Path(sec["cache_file"])
    else:
        cache = Path(cfg["User"]["save_root"]) / "nmf_cache" / f"nmf_{settings_digest}.npz"
    if cache.suffix != ".npz":
        cache = cache.with_name(cache.name + ".npz")
    meta = _read_json(cache.with_suffix(".json")) if cache.is_file() else {}
    missing = [(key, d) for key, d in zip(keys, dirs) if not d.is_dir()]
    if missing:
        key, d = missing[0]
        if meta.get("settings_digest") == settings_digest:
            log(f"NMF dictionaries: {cache} (cached; [NMF] {key} {str(d)!r} is absent, so it is not refitted)")
            return SupervisedNMF.load(cache)
        raise UserError(f"{cfg.path} [NMF] {key}: directory {str(d)!r} does not exist and no dictionary cache "
                        f"learned with these settings is at {str(cache)!r} (or remove nmf from [Eval] baselines)")
    files = [list_audio_files(d) for d in dirs]
    for key, d, found in zip(keys, dirs, files):
        if not found:
            raise UserError(f"{cfg.path} [NMF] {key}: no .wav/.flac files in {str(d)!r}")
    fingerprint = {**settings, "files": [[[str(p.relative_to(d)), hashlib.sha1(p.read_bytes()).hexdigest()]
                                          for p in found] for d, found in zip(dirs, files)]}
    digest = _digest(fingerprint)
    if meta.get("digest") == digest:
        log(f"NMF dictionaries: {cache} (cached)")
        return SupervisedNMF.load(cache)
    if meta:
        log(f"NMF dictionaries: {cache} was learned on other data or settings; refitting")
    t0 = time.perf_counter()
    frames = []
    for d in dirs:   # the same preprocessing as DVAE pre-training: trimmed files, |STFT|^2 frames
        frames.append(torch.cat(SpectrogramDataset(d, stft, sequence_len=1, trim=True).spectrograms))
    model = SupervisedNMF(n_components=sec["n_components"], beta=sec["beta"], n_iter_train=sec["iterations"],
                          n_iter_sep=sec["iterations_separation"], max_frames=sec["max_frames"],
                          seed=cfg["Training"]["seed"]).fit(frames)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".tmp-{os.getpid()}-{cache.name}")
    model.save(tmp)
    os.replace(tmp, cache)
    sidecar = {"digest": digest, "settings_digest": settings_digest, "train_dirs": [str(d) for d in dirs],
               **fingerprint}
    _write_text_atomic(cache.with_suffix(".json"), json.dumps(sidecar, indent=1) + "\n")
    log(f"NMF dictionaries: learned on {sum(len(f) for f in frames)} frames in {time.perf_counter() - t0:.1f}s, "
        f"cached in {cache}")
    return model


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- outputs
def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def results_table(tracker: MetricTracker, metrics: list[str]) -> str:
    """ONE table: rows = (method, source), columns = metrics then improvements over the mixture (means)."""
    summary = tracker.summary()
    shown = [m for m in TABLE_METRICS if m in metrics] or ["rmse"]
    methods = [m for m in METHOD_ORDER if m in summary]
    counts = tracker.frame.groupby("method").size()
    rows, index = [], []
    for method in methods:
        for n, name in enumerate(SOURCE_NAMES):
            key = f"s{n + 1}"
            row = {LABELS[m]: summary[method][f"{key}_{m}"]["mean"] for m in shown}
            row.update({LABELS[m] + "i": summary[method][f"{key}_{m}_i"]["mean"] for m in shown})
            rows.append(row)
            index.append((method, f"{key} {name}"))
    frame = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["method", "source"]))
    n_items = int(counts.get("MixDVAE", 0))
    header = (f"mean over {n_items} mixtures (NaNs ignored); 'i' = improvement over the mixture; "
              "medians and 95 % CIs in metrics_summary.json")
    footer = ("(BSS-eval gives the mixture a very high SAR — it is an exact sum of the sources, without "
              "artefacts — so SARi is negative for every method)")
    return header + "\n" + frame.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-") + "\n" + \
        (footer + "\n" if "sar" in shown else "")


def write_examples(run_dir: Path, names: list[str], batch: dict, estimates: dict[str, np.ndarray],
                   mu: torch.Tensor, eta: torch.Tensor, stft: STFT, count: int) -> None:
    """Wavs (mixture, references, every method's estimates) and a spectrogram figure for ``count`` items."""
    from utils.audio_io import write_wav
    from utils.scass_plots import plot_spectrograms

    audio_dir = run_dir / "audio"
    for b in range(count):
        name = names[b]
        write_wav(audio_dir / f"{name}_mixture.wav", batch["mixture"][b].numpy(), stft.fs, subtype="FLOAT")
        for n, src in enumerate(SOURCE_NAMES):
            write_wav(audio_dir / f"{name}_s{n + 1}_{src}_reference.wav", batch[f"s{n + 1}"][b].numpy(), stft.fs,
                      subtype="FLOAT")
            for method, wav in estimates.items():
                write_wav(audio_dir / f"{name}_s{n + 1}_{src}_{method.lower()}.wav", wav[b, n], stft.fs,
                          subtype="FLOAT")
        true_power = torch.stack([batch["s1_power"][b], batch["s2_power"][b]]).numpy()
        plot_spectrograms(run_dir / "figures" / f"{name}_spectrograms.png",
                          batch["mix_stft"][b].abs().square().numpy(), true_power,
                          mu[b].abs().square().numpy(), eta[b].numpy(), stft.fs, stft.hop, SOURCE_NAMES,
                          title=f"{name}: MixDVAE")


def score_item(mix: np.ndarray, clean: np.ndarray, estimates: dict[str, np.ndarray], fs: int, metrics: list[str],
               name: str, with_mixture: bool, log) -> dict[str, dict[str, float]]:
    """Metric rows (with improvements) of every method on one mixture, in table order (§8.2).

    The "Mixture" row scores the mixture as the estimate of every source (improvements 0).
    Metric failures are NaN; their warnings are logged as one line each.

    Shape: mix (L,); clean (N, L); estimates[method] (N, L).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = {m: improvements(get_metrics(mix, clean, est, fs, metrics, item=name)) for m, est in estimates.items()}
    for message in dict.fromkeys(str(w.message) for w in caught):
        log(f"warning: {message}")
    if with_mixture:
        rows["Mixture"] = improvements(mixture_row(rows["MixDVAE"]))
    return {m: rows[m] for m in METHOD_ORDER if m in rows}


class IterationScorer:
    """``on_iteration`` callback of the VEM: SI-SDR of every source after every iteration (§10 figure)."""

    def __init__(self, stft: STFT, clean: np.ndarray):
        self.stft, self.clean = stft, clean           # clean (B, N, L)
        self.values: list[np.ndarray] = []            # per iteration (B, N)
        self.seconds = 0.0                            # time spent here, not in the VEM

    def __call__(self, i, mu, v, eta):
        t0 = time.perf_counter()
        wav = self.stft.istft(mu.cpu(), self.clean.shape[-1]).double().numpy()
        self.values.append(np.array([[si_sdr(ref, est) for ref, est in zip(c, e)] for c, e in zip(self.clean, wav)]))
        self.seconds += time.perf_counter() - t0

    def save(self, run_dir: Path, mix: np.ndarray, eta_change: list[float]) -> None:
        from utils.scass_plots import plot_metric_per_iteration

        values = np.nanmean(np.stack(self.values), axis=1)                     # (I, N)
        inputs = np.nanmean([[si_sdr(ref, m) for ref in c] for c, m in zip(self.clean, mix)], axis=0)
        frame = pd.DataFrame({"iteration": np.arange(1, len(values) + 1),
                              **{f"s{n + 1}_si_sdr": values[:, n] for n in range(values.shape[1])},
                              "eta_change": eta_change})
        path = run_dir / "metric_per_iteration.csv"
        _write_text_atomic(path, frame.to_csv(index=False, float_format="%.4f"))
        plot_metric_per_iteration(run_dir / "figures" / "si_sdr_per_iteration.png", values, inputs, SOURCE_NAMES,
                                  title=f"MixDVAE SI-SDR per iteration (first batch, {len(self.clean)} mixtures)")


def method_spectra(batch: dict, mu: torch.Tensor, nmf: SupervisedNMF | None, baselines: list[str],
                     stft: STFT) -> dict[str, torch.Tensor]:
    """Source STFT estimates (B, N, T, F) per method: MixDVAE's ``mu``, then NMF and IBM if selected (§7)."""
    spectra = {"MixDVAE": mu}
    if nmf is not None:
        spectra["NMF"] = nmf.separate(batch["mix_stft"])
    if "ibm" in baselines:
        sources = stft.stft(torch.stack([batch["s1"], batch["s2"]], dim=1))
        spectra["IBM"] = ibm_estimates(batch["mix_stft"], sources)
    return spectra


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description="MixDVAE single-channel audio source separation (flute + speech).")
    ap.add_argument("config", help="INI file, e.g. config/cfg_dvae_vem_scass.ini")
    args = ap.parse_args()
    ranks = start()                                   # one rank, unless started by torchrun
    cfg, lists = load_cfg(args.config)
    user, tr, frame_cfg, ev = cfg["User"], cfg["Training"], cfg["DataFrame"], cfg["Eval"]
    if tr["num_threads"]:
        torch.set_num_threads(tr["num_threads"])
    torch.manual_seed(tr["seed"])
    np.random.seed(tr["seed"])

    logger_type = user["logger_type"] if ranks.main else 0   # only rank 0 logs
    logger = get_logger(None, logger_type)           # console now (types 1, 3); log.txt once the run dir exists
    buffer = LogBuffer()
    logger.addHandler(buffer)
    route_library_logs(logger)
    log = logger.info

    stft = STFT.from_config(cfg["STFT"])
    check_num_freqency(cfg, stft)
    device = ranks.device(tr["use_cuda"], log)
    dvaes, ckpts = load_dvaes(cfg, device)
    dataset = MixtureDataset(user["data_dir"], stft, frame_cfg["sequence_len"])
    baselines = lists["baselines"]
    nmf = ranks.broadcast(nmf_baseline(cfg, stft, log) if "nmf" in baselines and ranks.main else None)

    run_dir = make_run_dir(user["save_root"], "SC-ASS", user["run_name"] or "MixDVAE", Path(args.config)) \
        if ranks.main else None
    if logger_type in (2, 3):
        file_handler = logging.FileHandler(run_dir / "log.txt")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        buffer.replay(file_handler)
        logger.addHandler(file_handler)
    logger.removeHandler(buffer)
    route_library_logs(logger)

    log(f"run directory: {run_dir}")
    log(f"{stft}; {len(dataset)} mixtures of {frame_cfg['sequence_len']} frames from {user['data_dir']}")
    for n, (path_key, ckpt, model) in enumerate(zip(("saved_dvae_s1", "saved_dvae_s2"), ckpts, dvaes)):
        log(f"DVAE s{n + 1} ({SOURCE_NAMES[n]}): {tr[path_key]} (epoch {ckpt.get('epoch', '?')}, "
            f"{model.num_parameters()} parameters)")
    if user["print_model"]:
        log(str(dvaes[0]))
    options = vem_options(cfg)
    log(f"VEM: {options}")
    log(f"baselines: {', '.join(baselines) or 'none'}; metrics: {', '.join(lists['metrics'])}")

    tracker = MetricTracker()
    size = frame_cfg["batch_size"]
    batches = ranks.shard([list(range(i, min(i + size, len(dataset)))) for i in range(0, len(dataset), size)])
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate)

    def separate(start: int, batch: dict) -> tuple[int, dict]:
        """MixDVAE and the baselines on the batch starting at mixture ``start``: metric rows, the example
        wavs' inputs, the per-iteration scores (first batch), warnings and timings."""
        x = batch["mix_stft"]
        length = batch["mixture"].shape[-1]
        clean = torch.stack([batch["s1"], batch["s2"]], dim=1).double().numpy()      # (B, N, L)
        scorer = IterationScorer(stft, clean) if start == 0 and cfg["VEM"]["save_all_iters"] else None
        torch.manual_seed(tr["seed"] + start)     # a batch's draws depend on its mixtures, not on the batches before
        t0 = time.perf_counter()
        result = run_vem(dvaes, x.to(device), options, on_iteration=scorer)
        vem_seconds = time.perf_counter() - t0 - (scorer.seconds if scorer else 0.0)
        mu, eta = result.mu.cpu(), result.eta.cpu()
        diverged = ~torch.isfinite(torch.view_as_real(mu)).flatten(1).all(1)
        if diverged.any():   # never score or write NaN estimates
            name = batch["name"][int(diverged.int().argmax())]
            raise UserError(f"MixDVAE produced non-finite estimates for mixture {name} ({int(diverged.sum())} of "
                            f"this batch); check {cfg.path} [VEM] ratio_v_theta_x and v_x_floor")
        spectra = method_spectra(batch, mu, nmf, baselines, stft)
        estimates = {m: stft.istft(s, length).numpy() for m, s in spectra.items()}
        count = max(0, min(ev["num_audio_examples"] - start, len(batch["name"])))
        examples = count and (batch["name"][:count], {k: v[:count] for k, v in batch.items() if k != "name"},
                              {m: e[:count] for m, e in estimates.items()}, mu[:count], eta[:count])
        t0 = time.perf_counter()
        rows, notes = [], []
        for b, name in enumerate(batch["name"]):
            rows.append((name, score_item(batch["mixture"][b].numpy(), clean[b],
                                          {m: e[b] for m, e in estimates.items()}, stft.fs, lists["metrics"], name,
                                          "mixture" in baselines, notes.append)))
        iterations = scorer and (scorer, batch["mixture"].double().numpy(), result.history["eta_change"])
        return start, dict(rows=rows, notes=notes, examples=examples, scorer=iterations,
                           seconds=(vem_seconds, time.perf_counter() - t0))

    done = 0
    seconds = {"vem": 0.0, "metrics": 0.0}
    try:
        records = (separate(idx[0], batch) for idx, batch in zip(batches, tqdm(loader, desc="batches",
                                                                               disable=None if ranks.main else True)))
        if ranks.distributed:             # a failure on any rank stops every rank here
            records = ranks.gather_ordered(records)
            if not ranks.main:
                return
        for _, record in records:         # in batch order, as one process would
            if record["scorer"]:
                scorer, mix, eta_change = record["scorer"]
                scorer.save(run_dir, mix, eta_change)
            if record["examples"]:
                write_examples(run_dir, *record["examples"], stft, len(record["examples"][0]))
            for note in record["notes"]:
                log(note)
            for name, rows in record["rows"]:
                for method, row in rows.items():
                    tracker.add(name, method, row)
            seconds["vem"] += record["seconds"][0]
            seconds["metrics"] += record["seconds"][1]
            done += len(record["rows"])
    except UserError:     # nothing half-written: a run stopped by a failed batch leaves no run directory
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    log(f"VEM: {seconds['vem']:.1f}s ({done / max(seconds['vem'], 1e-9):.2f} mixtures/s); "
        f"metrics: {seconds['metrics']:.1f}s")

    staging = Path(tempfile.mkdtemp(prefix=".metrics-", dir=run_dir))
    table = results_table(tracker, lists["metrics"])
    for path in tracker.save(staging):
        if path.name != "summary.txt":
            os.replace(path, run_dir / path.name)
    shutil.rmtree(staging)
    _write_text_atomic(run_dir / "summary.txt", table)
    log("\n" + table)
    log(f"outputs in {run_dir}")


if __name__ == "__main__":
    run_main(main)
