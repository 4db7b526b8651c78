"""Separate flute + speech mixtures with MixDVAE and score it next to NMF, the mixture and the IBM.

    python mixdvae_scass.py config/cfg_dvae_vem_scass.ini [--set VEM.N_iter_total=5 ...] [--print-config]

The model and the VEM are described equation by equation in docs/method.md (§6 there). The INI
(with its ``--set`` overrides), the DVAE checkpoints (against [Network]/[STFT]), num_freqency and
the mixtures are validated first; then ``save_root/SC-ASS_<name>_<timestamp>/`` is created, holding
the effective INI, log.txt, ``audio/`` (separated wavs of the first mixtures: mixture, references,
one estimate per method and source), ``figures/`` (spectrograms with the eta mask; SI-SDR per VEM
iteration), metric_per_iteration.csv, metrics_per_item.csv, summary.json (with the run's provenance)
and summary.txt (the table printed at the end). A run stopped by bad input (e.g. missing NMF training
audio) removes its run directory.
"""

from __future__ import annotations

import logging
import os
import time
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
from model.nmf import SupervisedNMF, cached_nmf
from model.oracle import ibm_estimates
from model.scass_output import source_estimates
from model.srnn import SRNN
from model.vem_scass import VEMSettings, run_vem
from utils.audio_metrics import MetricPool, improvements, mixture_row, si_sdr
from utils.checkpoint import load_dvae, read_checkpoint
from utils.cli import script_config, seed_and_threads
from utils.config import Config, comma_list, load_config
from utils.config_keys_scass import BASELINES, METRICS, SOURCE_NAMES, VEM_SCASS
from utils.distributed import Ranks, start
from utils.errors import UserError, run_main
from utils.metric_tracker import MetricTracker
from utils.output_dir import atomic_write
from utils.provenance import provenance
from utils.run_dir import (LogBuffer, check_output_root, discard_on_user_error, get_logger, make_run_dir,
                           route_library_logs)
from utils.stage_timer import StageTimer
from utils.stft import STFT
from utils.workers import metric_workers

# utils.audio_io (scipy.signal) and utils.scass_plots (matplotlib) are imported where they are
# used: together they take seconds to import, and a run refused at validation should answer fast.

METHOD_ORDER = ("MixDVAE", "NMF", "Mixture", "IBM")
TABLE_METRICS = ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar")   # RMSE stays in the CSV / JSON
LABELS = {"si_sdr": "SI-SDR", "pesq": "PESQ", "estoi": "ESTOI", "sdr": "SDR", "sir": "SIR", "sar": "SAR",
          "rmse": "RMSE"}

# --------------------------------------------------------------------------- validation
def load_cfg(path: str, overrides: list[str] = ()) -> tuple[Config, dict]:
    """Parse and validate the INI with its ``--set`` overrides; returns the config and the parsed comma lists."""
    cfg = load_config(path, VEM_SCASS, overrides=overrides)
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


def vem_settings(cfg: Config) -> VEMSettings:
    vem, tr = cfg["VEM"], cfg["Training"]
    return VEMSettings(n_iter=vem["N_iter_total"], ratio_v_theta_x=vem["ratio_v_theta_x"],
                      v_x_floor=vem["v_x_floor"], es_power=vem["es_power"], z_mode=vem["z_mode"],
                      finetune=tr["finetune"], lr=tr["lr"], beta=tr["beta"],
                      mixture_power_db=vem["mixture_power_db"], tol=vem["convergence_tol"])


# --------------------------------------------------------------------------- outputs
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
            row.update({LABELS[m] + "i": summary[method][f"{key}_{m}_i"]["mean"] for m in shown if m != "sar"})
            rows.append(row)
            index.append((method, f"{key} {name}"))
    frame = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["method", "source"]))
    n_items = int(counts.get("MixDVAE", 0))
    header = (f"mean over {n_items} mixtures (NaNs ignored); 'i' = improvement over the mixture; "
              "medians and 95 % CIs in summary.json")
    footer = ("SAR is shown without SARi: BSS-eval gives the mixture itself a SAR of ~150 dB (an exact sum of the "
              "sources has no artefacts), so SARi would be about -140 dB for every method and say nothing")
    return header + "\n" + frame.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-") + "\n" + \
        (footer + "\n" if "sar" in shown else "")


def write_examples(run_dir: Path, names: list[str], batch: dict, estimates: dict[str, np.ndarray],
                   spectrum: torch.Tensor, eta: torch.Tensor, stft: STFT, count: int) -> None:
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
                          spectrum[b].abs().square().numpy(), eta[b].numpy(), stft.fs, stft.hop, SOURCE_NAMES,
                          title=f"{name}: MixDVAE")


def score_batch(pool: MetricPool, batch: dict, clean: np.ndarray, estimates: dict[str, np.ndarray], fs: int,
                metrics: list[str], with_mixture: bool, log) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """Metric rows (with improvements) of every method on every mixture of the batch, in table order (§8.2);
    the mixtures are scored in ``pool``'s worker processes, the rows come back in batch order.

    The "Mixture" row scores the mixture as the estimate of every source (improvements 0).
    Metric failures are NaN; their warnings are logged as one line each (per mixture).

    Shape: clean (B, N, L); estimates[method] (B, N, L).
    """
    names = batch["name"]
    items = [(batch["mixture"][b].numpy(), clean[b], {m: e[b] for m, e in estimates.items()}, name)
             for b, name in enumerate(names)]
    out = []
    for name, (rows, messages) in zip(names, pool.score_items(items, fs, metrics)):
        for message in messages:
            log(f"warning: {message}")
        if with_mixture:
            rows["Mixture"] = improvements(mixture_row(rows["MixDVAE"]))
        out.append((name, {m: rows[m] for m in METHOD_ORDER if m in rows}))
    return out


class IterationScorer:
    """``on_iteration`` callback of the VEM: SI-SDR of every source after every iteration (for its figure),
    of the estimates ``[VEM] output`` makes of that iteration's posterior (``x``: the batch's mixture STFT)."""

    def __init__(self, stft: STFT, clean: np.ndarray, x: torch.Tensor, output: str):
        self.stft, self.clean = stft, clean           # clean (B, N, L)
        self.x, self.output = x.cpu(), output
        self.values: list[np.ndarray] = []            # per iteration (B, N)
        self.seconds = 0.0                            # time spent here, not in the VEM

    def __call__(self, i, mu, v, eta):
        t0 = time.perf_counter()
        estimate = source_estimates(self.x, mu.cpu(), v.cpu(), self.output)
        wav = self.stft.istft(estimate, self.clean.shape[-1]).double().numpy()
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
        atomic_write(path, frame.to_csv(index=False, float_format="%.4f"))
        plot_metric_per_iteration(run_dir / "figures" / "si_sdr_per_iteration.png", values, inputs, SOURCE_NAMES,
                                  title=f"MixDVAE SI-SDR per iteration (first batch, {len(self.clean)} mixtures)")


def method_spectra(batch: dict, mixdvae: torch.Tensor, nmf: SupervisedNMF | None, baselines: list[str],
                     stft: STFT) -> dict[str, torch.Tensor]:
    """Source STFT estimates (B, N, T, F) per method: MixDVAE's (see ``[VEM] output``), then NMF and IBM if
    selected (§7)."""
    spectra = {"MixDVAE": mixdvae}
    if nmf is not None:
        spectra["NMF"] = nmf.separate(batch["mix_stft"])
    if "ibm" in baselines:
        sources = stft.stft(torch.stack([batch["s1"], batch["s2"]], dim=1))
        spectra["IBM"] = ibm_estimates(batch["mix_stft"], sources)
    return spectra


# --------------------------------------------------------------------------- main
def main() -> None:
    timer = StageTimer()                              # wall time per stage -> log and summary.json "timing"
    ranks = start()                                   # one rank, unless started by torchrun
    cfg, lists = script_config("MixDVAE single-channel audio source separation (flute + speech).",
                               "config/cfg_dvae_vem_scass.ini", load_cfg)
    user, tr, frame_cfg = cfg["User"], cfg["Training"], cfg["DataFrame"]
    seed_and_threads(tr["seed"], tr["num_threads"])

    logger_type = user["logger_type"] if ranks.main else 0   # only rank 0 logs
    logger = get_logger(None, logger_type)           # console now (types 1, 3); log.txt once the run dir exists
    buffer = LogBuffer()
    logger.addHandler(buffer)
    route_library_logs(logger)

    with timer("setup"):
        stft = STFT.from_config(cfg["STFT"])
        check_num_freqency(cfg, stft)
        device = ranks.device(tr["use_cuda"], logger.info)
        dvaes, ckpts = load_dvaes(cfg, device)
    with timer("data loading"):
        dataset = MixtureDataset(user["data_dir"], stft, frame_cfg["sequence_len"])

    run_dir = make_run_dir(user["save_root"], "SC-ASS", user["run_name"] or "MixDVAE", cfg) if ranks.main else None
    if logger_type in (2, 3):
        file_handler = logging.FileHandler(run_dir / "log.txt")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        buffer.replay(file_handler)
        logger.addHandler(file_handler)
    logger.removeHandler(buffer)
    route_library_logs(logger)
    with discard_on_user_error(run_dir, logger):     # a run stopped by bad input leaves no run directory
        workers = metric_workers(cfg["Eval"]["metric_workers"], ranks.world)
        with MetricPool(workers) as pool:
            separate_and_score(cfg, lists, stft, device, dvaes, ckpts, dataset, run_dir, logger.info, ranks, pool,
                               timer)


def separate_and_score(cfg: Config, lists: dict, stft: STFT, device: torch.device, dvaes: list[SRNN],
                       ckpts: list[dict], dataset: MixtureDataset, run_dir: Path | None, log, ranks: Ranks,
                       pool: MetricPool | None = None, timer: StageTimer | None = None) -> None:
    """Run MixDVAE and the baselines on every batch; write audio, figures, metrics and the summary.

    Metrics are computed in ``pool``'s worker processes (default: in this process). ``timer`` collects the
    wall time of every stage (data loading, VEM, baselines, metrics...; under torchrun each batch's stage
    times are added up over the ranks), logged at the end and written to summary.json ("timing").

    Under torchrun each rank separates its batches and rank 0 gathers the metric rows, example inputs and
    timings in batch order and writes everything (the other ranks pass ``run_dir`` None)."""
    user, tr, frame_cfg, ev = cfg["User"], cfg["Training"], cfg["DataFrame"], cfg["Eval"]
    pool, timer = pool or MetricPool(1), timer or StageTimer()
    log(f"run directory: {run_dir}")
    baselines = lists["baselines"]
    with timer("baselines: NMF dictionary"):          # fitted once, then read from its cache
        nmf = ranks.broadcast(
            cached_nmf(cfg["NMF"], tr["seed"], stft, Path(user["save_root"]) / "nmf_cache", str(cfg.path), log)
            if "nmf" in baselines and ranks.main else None)
    log(f"{stft}; {len(dataset)} mixtures of {frame_cfg['sequence_len']} frames from {user['data_dir']}")
    for n, (path_key, ckpt, model) in enumerate(zip(("saved_dvae_s1", "saved_dvae_s2"), ckpts, dvaes)):
        log(f"DVAE s{n + 1} ({SOURCE_NAMES[n]}): {tr[path_key]} (epoch {ckpt.get('epoch', '?')}, "
            f"{model.num_parameters()} parameters)")
    if user["print_model"]:
        log(str(dvaes[0]))
    settings, output = vem_settings(cfg), cfg["VEM"]["output"]
    log(f"VEM: {settings}; output: {output}")
    log(f"baselines: {', '.join(baselines) or 'none'}; metrics: {', '.join(lists['metrics'])} "
        f"({pool.workers} process(es))")

    tracker = MetricTracker()
    size = frame_cfg["batch_size"]
    batches = ranks.shard([list(range(i, min(i + size, len(dataset)))) for i in range(0, len(dataset), size)])
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate)

    def separate(start: int, batch: dict, load_seconds: float) -> tuple[int, dict]:
        """MixDVAE and the baselines on the batch starting at mixture ``start``: metric rows, the example
        wavs' inputs, the per-iteration scores (first batch), warnings and the wall time of every stage."""
        x = batch["mix_stft"]
        length = batch["mixture"].shape[-1]
        clean = torch.stack([batch["s1"], batch["s2"]], dim=1).double().numpy()      # (B, N, L)
        scorer = IterationScorer(stft, clean, x, output) if start == 0 and cfg["VEM"]["save_all_iters"] else None
        torch.manual_seed(tr["seed"] + start)     # a batch's draws depend on its mixtures, not on the batches before
        stages = StageTimer()
        stages.add("data loading", load_seconds)
        with stages("VEM"):
            result = run_vem(dvaes, x.to(device), settings, on_iteration=scorer)
        if scorer:                                # the per-iteration scoring ran inside the VEM's loop
            stages.add("VEM", -scorer.seconds)
            stages.add("per-iteration SI-SDR", scorer.seconds)
        spectrum, eta = source_estimates(x, result.mu.cpu(), result.v.cpu(), output), result.eta.cpu()
        diverged = ~torch.isfinite(torch.view_as_real(spectrum)).flatten(1).all(1)
        if diverged.any():   # never score or write NaN estimates
            name = batch["name"][int(diverged.int().argmax())]
            raise UserError(f"MixDVAE produced non-finite estimates for mixture {name} ({int(diverged.sum())} of "
                            f"this batch); check {cfg.path} [VEM] ratio_v_theta_x and v_x_floor")
        with stages("baselines"):
            spectra = method_spectra(batch, spectrum, nmf, baselines, stft)
        with stages("iSTFT"):
            estimates = {m: stft.istft(s, length).numpy() for m, s in spectra.items()}
        count = max(0, min(ev["num_audio_examples"] - start, len(batch["name"])))
        examples = count and (batch["name"][:count], {k: v[:count] for k, v in batch.items() if k != "name"},
                              {m: e[:count] for m, e in estimates.items()}, spectrum[:count], eta[:count])
        notes = []
        with stages("metrics"):
            rows = score_batch(pool, batch, clean, estimates, stft.fs, lists["metrics"], "mixture" in baselines,
                               notes.append)
        iterations = scorer and (scorer, batch["mixture"].double().numpy(), result.history["eta_change"])
        return start, dict(rows=rows, notes=notes, examples=examples, scorer=iterations, seconds=stages.seconds,
                           iterations=result.history["iterations"])

    done, iterations = 0, []
    loaded = timer.iterate(tqdm(loader, desc="batches", disable=None if ranks.main else True), "batch loading")
    records = (separate(idx[0], batch, timer.seconds.pop("batch loading", 0.0)) for idx, batch in zip(batches, loaded))
    if ranks.distributed:                 # a failure on any rank stops every rank here
        records = ranks.gather_ordered(records)
        if not ranks.main:
            return
    for _, record in records:             # in batch order, as one process would
        with timer("outputs"):
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
        timer.merge(record["seconds"])
        iterations.extend(record["iterations"])
        done += len(record["rows"])
    vem_seconds = timer.seconds.get("VEM", 0.0)
    log(f"VEM: {vem_seconds:.1f}s ({done / max(vem_seconds, 1e-9):.2f} mixtures/s, {np.mean(iterations):.1f} "
        f"iterations on average); metrics: {timer.seconds.get('metrics', 0.0):.1f}s in {pool.workers} process(es)")

    table = results_table(tracker, lists["metrics"])
    header = {"num_items": done, "checkpoints": [str(tr[k]) for k in ("saved_dvae_s1", "saved_dvae_s2")],
              "checkpoint_epochs": [c.get("epoch") for c in ckpts], "settings": {**vars(settings), "output": output},
              "seconds": {"vem": vem_seconds, "metrics": timer.seconds.get("metrics", 0.0)},
              "mean_iterations": float(np.mean(iterations)), "provenance": provenance(cfg, tr["seed"], device)}
    with timer("outputs"):
        header["timing"] = {**timer.as_dict(), "metric_workers": pool.workers}
        tracker.save(run_dir, header=header, table=table)
    log("\n" + table)
    log(timer.line())
    log(f"outputs in {run_dir}")


if __name__ == "__main__":
    run_main(main)
