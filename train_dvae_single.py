"""Pre-train one SRNN DVAE on single-source sequences (docs/method.md §4).

    python train_dvae_single.py config/cfg_dvae_single_mot.ini [--set Training.n_epochs=5 ...] [--print-config]

MOT: sequences of normalised boxes (data/mot_generate_synthetic_data.py).
SC-ASS: STFT power spectrograms of every audio file under the data directories.
Writes ``save_root/<task>_<name>_<timestamp>/`` with the effective INI, log.txt, loss.csv,
loss.png, best.pt and latest.pt (self-describing checkpoints) and summary.json (best epoch,
losses and the run's provenance).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from model.schedules import final_schedule_epoch, kl_weight, ss_probability
from data.interference import add_interference
from data.trajectory_dataset import add_box_noise
from model.srnn import SRNN, gap_mask
from utils.checkpoint import (HEAD_OF_TASK, build_srnn, check_matches, init_from, load_weights, read_checkpoint,
                              save_checkpoint)
from utils.cli import script_config, seed_and_threads
from utils.config import Config, load_config
from utils.config_keys import TRAIN, TRAIN_AUDIO, USER_COMMON
from utils.distributed import Ranks, start
from utils.errors import UserError, run_main
from utils.output_dir import atomic_write
from utils.provenance import provenance
from utils.run_dir import LogBuffer, check_output_root, get_logger, make_run_dir, route_library_logs

MOT_PIXELS = (1920.0, 1080.0)  # image size the reconstruction error is reported at


def load_cfg(path: str, overrides: list[str] = ()) -> Config:
    task = load_config(path, USER_COMMON[:1], strict=False, overrides=overrides)["User"]["task_name"]
    cfg = load_config(path, TRAIN if task == "MOT" else TRAIN_AUDIO, overrides=overrides)
    if cfg["Training"]["continue_train"]:
        check_output_root(cfg["Training"]["resume_dir"], f"{cfg.path} [Training] resume_dir")
    else:
        check_output_root(cfg["User"]["save_root"], f"{cfg.path} [User] save_root")
    return cfg


def make_datasets(cfg: Config):
    """(train, val) datasets of (T, D) sequences for the task."""
    user, frame = cfg["User"], cfg["DataFrame"]
    if user["task_name"] == "MOT":
        from data.trajectory_dataset import TrajectoryDataset

        return (TrajectoryDataset(user["train_data_dir"], frame["sequence_len"]),
                TrajectoryDataset(user["val_data_dir"], frame["sequence_len"]))
    from data.audio_dataset import SpectrogramDataset
    from utils.stft import STFT

    stft = STFT.from_config(cfg["STFT"])
    kw = dict(stft=stft, sequence_len=frame["sequence_len"], trim=cfg["STFT"]["trim"])
    return (SpectrogramDataset(user["train_data_dir"], use_random_seq=frame["use_random_seq"],
                               seed=cfg["Training"]["seed"], **kw),
            SpectrogramDataset(user["val_data_dir"], use_random_seq=False, **kw))


def interference_pool(cfg: Config):
    """(pool (P, T, F), snr range, probability) of ``[Training] interference_dir`` (SC-ASS), or None when it is
    empty: every sequence of that folder's audio, cut as the training data is."""
    tr, frame = cfg["Training"], cfg["DataFrame"]
    if not tr["interference_dir"]:
        return None
    where = f"{cfg.path} [Training]"
    if cfg["User"]["task_name"] == "MOT":
        raise UserError(f"{where} interference_dir: only the audio tasks take interference")
    try:
        low, high = (float(v) for v in tr["interference_snr"].split(","))
    except ValueError:
        raise UserError(f"{where} interference_snr: expected 'low, high' in dB, got {tr['interference_snr']!r}") \
            from None
    if low > high:
        raise UserError(f"{where} interference_snr: low {low} > high {high}")
    from data.audio_dataset import SpectrogramDataset
    from utils.stft import STFT

    folder = Path(tr["interference_dir"])
    if not folder.is_dir():
        raise UserError(f"{where} interference_dir: {folder} is not a directory")
    data = SpectrogramDataset(folder, STFT.from_config(cfg["STFT"]), sequence_len=frame["sequence_len"],
                              trim=cfg["STFT"]["trim"], use_random_seq=False)
    if len(data) == 0:
        raise UserError(f"{where} interference_dir: no sequence of {frame['sequence_len']} frames in {folder}")
    return torch.stack([data[i] for i in range(len(data))]), (low, high), tr["interference_prob"]


def check_x_dim(cfg: Config) -> None:
    """[Network] x_dim must be the data dimension: 4 box coordinates (MOT) or the STFT's F bins (SC-ASS)."""
    x_dim = cfg["Network"]["x_dim"]
    if cfg["User"]["task_name"] == "MOT":
        expected, what = 4, "the 4 box coordinates for task MOT"
    else:
        from utils.stft import STFT

        stft = STFT.from_config(cfg["STFT"])
        expected, what = stft.num_freqs, f"the number of frequency bins of [STFT] (nfft {stft.nfft} -> F)"
    if x_dim != expected:
        raise UserError(f"{cfg.path} [Network] x_dim: expected {expected} ({what}), got {x_dim}")


@torch.no_grad()
def feature_stats(model: SRNN, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean and std (D,) of the model's raw (unstandardised) features over a data loader, and the RMS (D,)
    of the frame-to-frame increments x_t - x_{t-1} in data space (used with ``increments``)."""
    model.set_feature_stats(torch.zeros(model.x_dim), torch.ones(model.x_dim))
    total, total_sq, count, inc_sq, inc_count = 0.0, 0.0, 0, 0.0, 0
    for x in loader:
        f = model.features(x).reshape(-1, model.x_dim).double()
        total, total_sq, count = total + f.sum(0), total_sq + (f**2).sum(0), count + f.shape[0]
        inc = (x[:, 1:] - x[:, :-1]).reshape(-1, model.x_dim).double()
        inc_sq, inc_count = inc_sq + (inc**2).sum(0), inc_count + inc.shape[0]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(0).sqrt()
    return mean.float(), std.float(), (inc_sq / max(inc_count, 1)).sqrt().float()


def run_epoch(model, loader, beta, kl_w, ss_p, optimizer=None, max_batches=0, device="cpu", input_noise=0.0,
              noise_seed=None, net=None, ranks: Ranks | None = None, gaps=(0.0, 8, 15), interference=None):
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns mean (total, recon, kl).

    ``input_noise`` > 0 (MOT): the model is fed noisy boxes (:func:`add_box_noise`) and scored against the
    clean ones — a denoising DVAE, as the VEM feeds it noisy estimates. ``noise_seed`` fixes the noise
    (validation: the same noise every epoch, so losses compare). ``interference`` = (pool, snr range, probability)
    (SC-ASS): the model is fed the power plus another source's (:func:`data.interference.add_interference`), drawn
    with the same generator, and scored against the clean power.
    Under torchrun ``net`` is ``model`` in DistributedDataParallel (its forward is the one that averages
    the gradients), ``loader`` this rank's shard, and the means are over every rank's sequences.
    ``gaps`` = (probability, shortest, longest): free-running gaps (:func:`model.srnn.gap_mask`), drawn
    with the noise generator (validation: the same gaps every epoch)."""
    ranks = ranks or Ranks()
    net = net or model
    net.train(optimizer is not None)
    sums, n = np.zeros(3), 0
    gen = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
    with torch.set_grad_enabled(optimizer is not None):
        for i, x in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            with ranks.global_batch_noise(x.shape[0]):
                x_in = add_box_noise(x, input_noise, gen) if input_noise > 0 else x
                if interference is not None:
                    x_in = add_interference(x_in, *interference, gen=gen)
                x, x_in = x.to(device), x_in.to(device)
                gap = gap_mask(x.shape[0], x.shape[1], gaps[0], gaps[1:], gen).to(device) if gaps[0] > 0 else None
                total, recon, kl = model.loss(x, net(x_in, ss_prob=ss_p, gaps=gap), beta, kl_w)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                optimizer.step()
            sums += np.array([total.item(), recon.item(), kl.item()]) * x.shape[0]
            n += x.shape[0]
    totals = ranks.all_sum([*sums, n])
    return totals[:3] / max(totals[3], 1)


@torch.no_grad()
def mot_recon_px(model: SRNN, loader: DataLoader, device="cpu", ranks: Ranks | None = None) -> float:
    """Teacher-forced reconstruction error (posterior-mean z, decoder mean), mean L2 in pixels, frames 3..T."""
    model.eval()
    scale = torch.tensor([*MOT_PIXELS, *MOT_PIXELS], device=device)
    errs = []
    for x in loader:
        x = x.to(device)
        mean = model.reconstruct(x)[0]
        errs.append(torch.linalg.norm((mean - x)[:, 2:] * scale, dim=-1).flatten())
    return (ranks or Ranks()).mean(torch.cat(errs))


def plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(csv_path)
    fig, axes = plt.subplots(1, 2 + ("val_recon_px" in df), figsize=(13, 3.6))
    for ax, col in zip(axes, ("total", "kl")):
        ax.plot(df["epoch"], df[f"train_{col}"], label="train")
        ax.plot(df["epoch"], df[f"val_{col}"], label="validation")
        ax.set_title(f"{col} loss")
        ax.set_xlabel("epoch")
        ax.legend()
    if "val_recon_px" in df:
        axes[2].plot(df["epoch"], df["val_recon_px"])
        axes[2].set_title("val reconstruction error (px @1920x1080)")
        axes[2].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def lock_run_dir(run_dir: Path) -> int:
    """Hold an exclusive lock on ``run_dir`` for the life of this process (returns the lock file descriptor).

    Raises:
        UserError: another training process (a second resume of the same run) holds it.
    """
    handle = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise UserError(f"run directory {str(run_dir)!r} is in use by another training process; wait for it to "
                        "finish (two runs writing one directory would corrupt its checkpoints)") from None
    return handle


def resume_state(cfg: Config, model, optimizer, ranks: Ranks) -> tuple[Path, dict, dict, int | None]:
    """Lock the run to resume, load model and optimizer from its checkpoint (under torchrun: rank 0 locks
    and reads it, every rank loads it).

    Returns (run_dir, train_state, checkpoint, lock).
    """
    tr = cfg["Training"]
    run_dir = Path(tr["resume_dir"]) if str(tr["resume_dir"]) not in ("", ".") else None
    if run_dir is None or not run_dir.is_dir():
        raise UserError(f"{cfg.path} [Training] resume_dir: continue_train = True needs an existing run "
                        f"directory, got {str(tr['resume_dir'])!r}")
    which = tr["which_epoch"]
    if which not in ("latest", "best") and not which.isdigit():
        raise UserError(f"{cfg.path} [Training] which_epoch: expected latest, best or an epoch number, got {which!r}")
    lock = lock_run_dir(run_dir) if ranks.main else None
    ckpt_path = run_dir / (f"{which}.pt" if which in ("latest", "best") else f"epoch_{int(which):04d}.pt")
    ckpt = ranks.broadcast(read_checkpoint(ckpt_path) if ranks.main else None)
    check_matches(ckpt, ckpt_path, cfg["Network"], cfg.section("STFT") or None)
    load_weights(model, ckpt["model"], ckpt_path)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError) as err:
        raise UserError(f"checkpoint {str(ckpt_path)!r} has an unusable optimizer state ({err})") from None
    ckpt["path"] = ckpt_path
    return run_dir, dict(ckpt["train_state"]), ckpt, lock


def check_finite(model: SRNN, losses: np.ndarray, epoch: int, run_dir: Path) -> None:
    """Stop before saving anything of an epoch whose losses or weights are not finite (no NaN checkpoint)."""
    bad = [name for name, p in model.state_dict().items() if not torch.isfinite(p).all()]
    if bad or not np.isfinite(losses).all():
        what = f"weights {bad[0]!r}" if bad else "losses " + ", ".join(f"{v:.4g}" for v in losses)
        raise UserError(f"training diverged at epoch {epoch}: non-finite {what}; nothing of this epoch was saved, "
                        f"{run_dir / 'latest.pt'} holds the last finite epoch (lower [Training] lr, check the data)")


def write_csv_atomic(path: Path, columns: list[str], rows: list[list]) -> None:
    """loss.csv, rewritten whole (temporary file + rename): a kill never leaves a partial or duplicated row."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows([f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows)
    atomic_write(path, text.getvalue())


def reconcile_best(run_dir: Path, ckpt: dict, state: dict, log) -> None:
    """Make best.pt the best over the run's whole history after a resume.

    - best.pt better than anything the resumed checkpoint knows (a resume from an older epoch): keep it,
      and only a better epoch replaces it;
    - the resumed checkpoint is itself the best but best.pt is older (killed between latest.pt and
      best.pt): write best.pt from it.
    """
    best_path = run_dir / "best.pt"
    best = read_checkpoint(best_path) if best_path.is_file() else None
    best_val = best.get("val_loss") if best else None
    if best_val is not None and math.isfinite(best_val) and best_val < state["best_val"]:
        log(f"best.pt (epoch {best['epoch']}, validation loss {best_val:.4f}) is kept: better than the resumed "
            f"history's best")
        state.update(best_val=float(best_val), best_epoch=int(best["epoch"]))
    elif state["best_epoch"] == ckpt["epoch"] and (best is None or best.get("epoch") != ckpt["epoch"]):
        atomic_write(best_path, lambda tmp: torch.save({k: v for k, v in ckpt.items() if k != "path"}, tmp))
        log(f"best.pt rewritten from {ckpt['path']} (epoch {ckpt['epoch']}, the best so far)")


def resumed_history(state: dict, csv_path: Path) -> list[list]:
    """Loss rows of the epochs before ``state["epoch"]``: from the checkpoint, or (older checkpoints without
    a history) from loss.csv, one row per epoch, rows of later epochs dropped."""
    if "history" in state:
        return list(state["history"])
    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    by_epoch = {int(float(r[0])): r for r in rows if r and r[0].strip()}
    return [by_epoch[e] for e in sorted(by_epoch) if e < state["epoch"]]


def main() -> None:
    ranks = start()                                   # one rank, unless started by torchrun
    cfg = script_config("Pre-train an SRNN DVAE on single-source data.", "config/cfg_dvae_single_mot.ini", load_cfg)
    user, tr, frame, net = cfg["User"], cfg["Training"], cfg["DataFrame"], cfg["Network"]
    stft = cfg.section("STFT") if user["task_name"] == "SC-ASS" else None
    if tr["ss_end"] < tr["ss_start"]:
        raise UserError(f"{cfg.path} [Training] ss_end: must be >= ss_start ({tr['ss_start']}), got {tr['ss_end']}")
    check_x_dim(cfg)
    ranks.local_batch(frame["batch_size"], f"{cfg.path} [DataFrame] batch_size")
    if net["increments"] and user["task_name"] != "MOT":
        raise UserError(f"{cfg.path} [Network] increments: only the MOT (Gaussian) head supports it")
    if tr["init_from"] and tr["stats_from"]:
        raise UserError(f"{cfg.path} [Training] stats_from: set init_from or stats_from, not both "
                        "(init_from brings its statistics)")
    if net["velocity"] and not net["increments"]:
        raise UserError(f"{cfg.path} [Network] velocity: needs increments = True")
    seed_and_threads(tr["seed"], tr["num_threads"])
    logger_type = user["logger_type"] if ranks.main else 0   # only rank 0 logs
    logger = get_logger(None, logger_type)           # console now; log.txt once the run directory exists
    buffer = LogBuffer()
    logger.addHandler(buffer)
    route_library_logs(logger)                        # resample / fold-to-mono / skipped-file notices
    log = logger.info
    model = build_srnn(net, HEAD_OF_TASK[user["task_name"]])
    optimizer = torch.optim.Adam(model.parameters(), lr=tr["lr"])
    run_dir, state, ckpt, lock = resume_state(cfg, model, optimizer, ranks) if tr["continue_train"] else (None,) * 4
    train_set, val_set = make_datasets(cfg)           # every input is read before a run directory exists
    interference = interference_pool(cfg)
    if run_dir is None and ranks.main:
        run_dir = make_run_dir(user["save_root"], user["task_name"], user["run_name"] or "SRNN", cfg)
        lock = lock_run_dir(run_dir)
    run_dir = ranks.broadcast(run_dir)
    logger = get_logger(run_dir if ranks.main else None, logger_type)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            buffer.replay(handler)
    route_library_logs(logger)
    log = logger.info
    device = ranks.device(tr["use_cuda"], log)
    log(f"run directory: {run_dir}")
    if ckpt is not None:
        log(f"resumed from {ckpt['path']} (epoch {ckpt['epoch']})")
    log(f"data: {len(train_set)} training / {len(val_set)} validation sequences of {frame['sequence_len']} frames")
    if interference is not None:
        log(f"interference: {interference[0].shape[0]} sequences of {tr['interference_dir']}, "
            f"{interference[1][0]:g} to {interference[1][1]:g} dB below the source, on {interference[2]:.0%} of them")
    loader, val_loader, stats_loader = ranks.data_loaders(train_set, val_set, frame["batch_size"], frame["shuffle"],
                                                          tr["seed"], f"{cfg.path} [DataFrame] batch_size")
    if state is None and tr["init_from"]:
        init_from(model, tr["init_from"], net, f"{cfg.path} [Training] init_from")
        log(f"weights and feature statistics from {tr['init_from']}")
    elif state is None and tr["stats_from"]:
        other = read_checkpoint(tr["stats_from"])["model"]
        if other["feat_mean"].shape != model.feat_mean.shape:
            raise UserError(f"{cfg.path} [Training] stats_from: {tr['stats_from']} has x_dim "
                            f"{other['feat_mean'].numel()}, this [Network] has {model.x_dim}")
        model.set_feature_stats(other["feat_mean"], other["feat_std"], other.get("delta_std"))
        log(f"feature statistics from {tr['stats_from']}")
    elif state is None:
        model.set_feature_stats(*feature_stats(model, stats_loader))
    if state is None:
        state = {"epoch": 0, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0}
    model.to(device)
    ddp = ranks.wrap(model, device)
    if user["print_model"]:
        log(f"{model}\nparameters: {model.num_parameters()}")
    final_epoch = final_schedule_epoch(tr["ss_start"], tr["ss_end"], tr["kl_warmup"], tr["schedule_sampling"])
    csv_path = run_dir / "loss.csv"
    columns = ["epoch", "kl_weight", "ss_prob", "train_total", "train_recon", "train_kl",
               "val_total", "val_recon", "val_kl", "seconds"] + (["val_recon_px"] if user["task_name"] == "MOT" else [])
    # The checkpoint carries the loss history up to its epoch: loss.csv is rewritten from it, so a resume
    # (from any epoch) or a kill between checkpoint and CSV never duplicates or loses a row.
    history = resumed_history(state, csv_path) if ckpt is not None else []
    if ckpt is not None and ranks.main:
        reconcile_best(run_dir, ckpt, state, log)
    if ranks.main:
        write_csv_atomic(csv_path, columns, history)
    bar = tqdm(range(state["epoch"], tr["n_epochs"]), desc="epochs", disable=None if ranks.main else True,
               initial=state["epoch"], total=tr["n_epochs"])
    for epoch in bar:
        t0 = time.perf_counter()
        kl_w = kl_weight(epoch, tr["ss_start"], tr["kl_warmup"])
        ss_p = ss_probability(epoch, tr["ss_start"], tr["ss_end"], tr["schedule_sampling"], tr["ss_max"])
        if hasattr(train_set, "set_epoch"):  # random crops differ per epoch (use_random_seq)
            train_set.set_epoch(epoch)
        ranks.new_epoch(loader, epoch)
        noise = tr["input_noise"] if user["task_name"] == "MOT" else 0.0
        gaps = (tr["gap_prob"] if epoch >= tr["ss_start"] else 0.0, tr["gap_min"], tr["gap_max"])
        train = run_epoch(model, loader, tr["beta"], kl_w, ss_p, optimizer, frame["max_train_batches"], device, noise,
                          net=ddp, ranks=ranks, gaps=gaps, interference=interference)
        val = run_epoch(model, val_loader, tr["beta"], kl_w, ss_p, device=device, input_noise=noise,
                        noise_seed=tr["seed"], ranks=ranks, gaps=gaps, interference=interference)
        check_finite(model, np.concatenate([train, val]), epoch, run_dir)
        row = [epoch, kl_w, ss_p, *train, *val, time.perf_counter() - t0]
        if user["task_name"] == "MOT":
            row.append(mot_recon_px(model, val_loader, device, ranks))
        row = [float(v) if isinstance(v, (float, np.floating)) else v for v in row]
        improved = epoch >= final_epoch and val[0] < state["best_val"]
        if improved:
            state.update(best_val=float(val[0]), best_epoch=epoch, bad_epochs=0)
        elif epoch >= final_epoch:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        history.append(row)
        extra = dict(optimizer=optimizer.state_dict(), train_state={**state, "history": list(history)}, epoch=epoch,
                     val_loss=float(val[0]), task=user["task_name"])
        if ranks.main:                                                        # the only writer
            save_checkpoint(run_dir / "latest.pt", model, net, stft, **extra)    # the commit point of the epoch
            write_csv_atomic(csv_path, columns, history)
            if improved:
                save_checkpoint(run_dir / "best.pt", model, net, stft, **extra)
            if (epoch + 1) % tr["save_frequency"] == 0:
                save_checkpoint(run_dir / f"epoch_{epoch:04d}.pt", model, net, stft, **extra)
                plot_losses(csv_path, run_dir / "loss.png")
        msg = (f"epoch {epoch:4d}  kl_w {kl_w:.2f}  ss {ss_p:.2f}  train {train[0]:.4f} "
               f"(recon {train[1]:.4f}, kl {train[2]:.4f})  val {val[0]:.4f}  {row[9]:.1f}s")
        if user["task_name"] == "MOT":
            msg += f"  val recon {row[-1]:.1f}px"
        log(msg)
        bar.set_postfix(val=f"{val[0]:.4f}")
        if ranks.broadcast(state["bad_epochs"] >= tr["early_stop_patience"]):   # every rank stops together
            log(f"early stopping: no better validation loss for {tr['early_stop_patience']} epochs")
            break
    if not ranks.main:
        return
    if not (run_dir / "best.pt").exists():  # training ended before the schedules settled
        save_checkpoint(run_dir / "best.pt", model, net, stft, optimizer=optimizer.state_dict(),
                        train_state={**state, "history": list(history)}, epoch=state["epoch"] - 1,
                        task=user["task_name"])
    plot_losses(csv_path, run_dir / "loss.png")
    atomic_write(run_dir / "summary.json", json.dumps(
        {"task": user["task_name"], "epochs": state["epoch"], "best_epoch": state["best_epoch"],
         "best_val_loss": state["best_val"] if math.isfinite(state["best_val"]) else None,
         "last": dict(zip(columns, history[-1])) if history else None,
         "parameters": model.num_parameters(), "provenance": provenance(cfg, tr["seed"], device)}, indent=2) + "\n")
    log(f"best epoch {state['best_epoch']} (validation loss {state['best_val']:.4f}); "
        f"checkpoints in {run_dir}")
    os.close(lock)


if __name__ == "__main__":
    run_main(main)
