"""Track N objects with MixDVAE and score it next to KF-VEM and a SORT-style tracker.

    python mixdvae_mot.py config/cfg_dvae_vem_mot.ini

DESIGN §5 (VEM), §7 (baselines), §8.1 (metrics), §10 (outputs). The INI, the DVAE checkpoint
(against any [Network] keys given) and every sample (N = num_source, at most num_obs detections
per frame, valid init boxes) are checked first; only then is
``save_root/MOT_<name>_<timestamp>/`` created, holding:

- the INI copy and ``log.txt``;
- ``summary.txt`` (the table printed at the end) and ``summary.json``;
- ``metrics_per_sample.csv`` (one row per sample and method);
- ``metric_per_iteration.csv`` (MOTA/IDF1 after the initialisation and every VEM iteration) and
  ``elbo_per_iteration.csv`` (§5.8 terms, dataset means);
- ``tracks/<method>/<sample>.txt`` in MOTChallenge result format (source n = id n + 1);
- ``figures/``: tracks of the first samples over detections and ground truth, MOTA/IDF1 per iteration.

Every method has its own settings: the KF-VEM filter and smoother take tau, the initialisation window and
the process noise from [KF] (empty keys inherit), and [Eval] extra_dvae adds one MixDVAE row per further
checkpoint ("MixDVAE-<name>").
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import replace
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.mot_dataset import MOTSampleDataset, collate_mot
from model.kf_vem import KalmanDynamics
from model.vem_mot import SRNNDynamics, VEMSettings, run_vem, valid_detections
from utils.checkpoint import load_dvae
from utils.config import Config, choose_device, comma_list, load_config
from utils.config_keys_mot import BASELINES, VEM_MOT
from utils.errors import UserError, run_main
from utils.run_dir import check_output_root, get_logger, make_run_dir

# pandas, utils.mot_eval (motmetrics, TrackEval, scipy), the SORT baseline and the plots are imported
# where they are used: together they take seconds to import, and a refused run should answer fast.

METHODS = {"mixdvae": "MixDVAE", "kf_filter": "KF-VEM-filter", "kf_vem": "KF-VEM-smoother", "sort": "SORT"}
COLUMNS = {"mota": "MOTA", "motp": "MOTP", "idf1": "IDF1", "idp": "IDP", "idr": "IDR", "num_switches": "IDs",
           "num_false_positives": "FP", "num_misses": "FN", "mostly_tracked": "MT", "partially_tracked": "PT",
           "mostly_lost": "ML", "num_fragmentations": "Frag", "hota": "HOTA", "deta": "DetA", "assa": "AssA"}
PERCENT = ("mota", "idf1", "idp", "idr", "hota", "deta", "assa")


# --------------------------------------------------------------------------- validation
def load_cfg(path: str) -> tuple[Config, list[str]]:
    """Parse and validate the INI; returns the config and the baseline list."""
    cfg = load_config(path, VEM_MOT)
    if cfg["User"]["task_name"] != "MOT":
        raise UserError(f"{cfg.path} [User] task_name: mixdvae_mot.py needs MOT, got {cfg['User']['task_name']}")
    if len(cfg["DataFrame"]["normalize_range"]) != 2:
        raise UserError(f"{cfg.path} [DataFrame] normalize_range: expected two numbers (width, height), got "
                        f"{cfg['DataFrame']['normalize_range']}")
    check_output_root(cfg["User"]["save_root"], f"{cfg.path} [User] save_root")
    return cfg, comma_list(cfg["Eval"]["baselines"], BASELINES, f"{cfg.path} [Eval] baselines")


def load_mot_dvae(cfg: Config):
    """The pre-trained DVAE, checked against the [Network] keys the INI gives and against o_dim."""
    path = Path(cfg["Training"]["saved_dvae"])
    network = {k: v for k, v in cfg.section("Network").items() if v is not None}
    model, ckpt = load_dvae(path, network=network, head="gaussian", where=str(cfg.path))
    if model.x_dim != cfg["VEM"]["o_dim"]:
        raise UserError(f"{cfg.path} [VEM] o_dim = {cfg['VEM']['o_dim']} but checkpoint {str(path)!r} has "
                        f"x_dim = {model.x_dim}")
    return model, ckpt


def load_samples(cfg: Config) -> list[dict]:
    """Every sample of ``data_dir``, checked: N = num_source, at most num_obs detections per frame, valid
    init boxes (zero-area / inverted detections are skipped by the loader with a warning)."""
    dataset = MOTSampleDataset(cfg["User"]["data_dir"])
    num_source, num_obs = cfg["VEM"]["num_source"], cfg["VEM"]["num_obs"]
    items = []
    for i in tqdm(range(len(dataset)), desc="loading samples", disable=None):
        item = dataset[i]
        where = f"{dataset.files[i]}"
        if item["gt"].shape[1] != num_source or item["init"].shape != (num_source, 4):
            raise UserError(f"{where}: {item['gt'].shape[1]} targets but {cfg.path} [VEM] num_source = {num_source}")
        if items and len(item["gt"]) != len(items[0]["gt"]):
            raise UserError(f"{where}: {len(item['gt'])} frames but {dataset.files[0]} has {len(items[0]['gt'])} "
                            "(one data_dir must hold samples of one length)")
        per_frame = item["det_mask"].sum(1)
        if int(per_frame.max()) > num_obs:
            t = int(per_frame.argmax())
            raise UserError(f"{where}: frame {t} has {int(per_frame[t])} detections but {cfg.path} [VEM] num_obs = "
                            f"{num_obs} (raise num_obs; use clutter_logprob for clutter)")
        bad = ~valid_detections(item["init"])
        if bad.any():
            raise UserError(f"{where}: init box of target {int(bad.nonzero()[0, 0])} is not a valid box "
                            "(needs finite x1 < x2, y1 < y2)")
        size = item["image_size"]
        if cfg["DataFrame"]["normalize"] == "image_size" and not (torch.isfinite(size).all() and (size > 0).all()):
            raise UserError(f"{where}: image_size {size.tolist()} is not a positive (width, height), but "
                            f"{cfg.path} [DataFrame] normalize = image_size divides by it")
        if torch.isfinite(size).all() and (size > 0).all():
            far = item["det_mask"] & ~valid_detections(item["det"][None], item["det_mask"][None], size[None])[0]
            if far.any():   # a detector glitch far off the image would drag a whole track along
                warnings.warn(f"{where}: {int(far.sum())} detection box(es) far outside the {int(size[0])} x "
                              f"{int(size[1])} image treated as missing", stacklevel=2)
                item["det_mask"] = item["det_mask"] & ~far
                item["det"][far] = float("nan")
        items.append(item)
    return items


def load_extra_dvaes(cfg: Config) -> dict[str, tuple]:
    """[Eval] extra_dvae ("name:path, ..."): more MixDVAE rows, each checkpoint loaded and checked against
    o_dim (not against [Network], which describes saved_dvae: an extra may be non-causal or larger).

    Returns: name -> (model, checkpoint path, its epoch), in the INI's order.
    """
    where = f"{cfg.path} [Eval] extra_dvae"
    out: dict[str, tuple] = {}
    for item in (v.strip() for v in cfg["Eval"]["extra_dvae"].split(",")):
        if not item:
            continue
        name, sep, path = (v.strip() for v in item.partition(":"))
        if not sep or not name or not path:
            raise UserError(f"{where}: expected name:checkpoint, got {item!r}")
        if name in out:
            raise UserError(f"{where}: the name {name!r} is used twice")
        model, ckpt = load_dvae(Path(path), head="gaussian", where=where)
        if model.x_dim != cfg["VEM"]["o_dim"]:
            raise UserError(f"{where}: checkpoint {path!r} has x_dim = {model.x_dim} but [VEM] o_dim = "
                            f"{cfg['VEM']['o_dim']}")
        out[name] = (model, path, ckpt.get("epoch", "?"))
    return out


def kalman_methods(cfg: Config, settings: VEMSettings) -> dict[str, tuple[KalmanDynamics, VEMSettings]]:
    """KF-VEM smoother ("kf_vem") and filter ("kf_filter"), each with its own tau, initialisation window and
    process noise: [KF] keys, an empty one inheriting ([KF] filter_* <- [KF] <- [VEM])."""
    kf = cfg["KF"]

    def first(*values):
        return next(v for v in values if v is not None)

    tau = first(kf["assignment_temperature"], settings.temperature)
    init = first(kf["init_subseq_len"], settings.init_subseq_len)
    smoother = replace(settings, temperature=tau, init_subseq_len=init)
    filt = replace(settings, temperature=first(kf["filter_assignment_temperature"], tau),
                   init_subseq_len=first(kf["filter_init_subseq_len"], init))
    return {"kf_vem": (KalmanDynamics(kf["accel_std_ratio"], kf["init_vel_std_ratio"], True), smoother),
            "kf_filter": (KalmanDynamics(first(kf["filter_accel_std_ratio"], kf["accel_std_ratio"]),
                                         kf["init_vel_std_ratio"], False), filt)}


def check_tracks(label: str, tracks: torch.Tensor, names: list[str], cfg: Config) -> None:
    """Stop with a clear error when a method's VEM state went non-finite (no NaN track is ever written)."""
    bad = ~torch.isfinite(tracks).all(dim=(1, 2, 3))
    if bad.any():
        name = names[int(bad.nonzero()[0, 0])]
        raise UserError(f"{label} produced non-finite tracks for sample {name} ({int(bad.sum())} sample(s) "
                        f"of this batch); the VEM state diverged: check {cfg.path} [VEM] std_ratio, "
                        "assignment_temperature and the sample's boxes")


def vem_settings(cfg: Config) -> VEMSettings:
    vem, frame = cfg["VEM"], cfg["DataFrame"]
    return VEMSettings(n_iter=vem["N_iter_total"], init_iter=vem["init_iter_number"],
                       init_subseq_len=vem["init_subseq_len"], tol=vem["convergence_tol"], std_ratio=vem["std_ratio"],
                       temperature=vem["assignment_temperature"], clutter_logprob=vem["clutter_logprob"],
                       update_phi=vem["update_phi"], save_all_iters=vem["save_all_iters"],
                       normalize=frame["normalize"], normalize_range=tuple(frame["normalize_range"]))


# --------------------------------------------------------------------------- scoring
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

    def tables(self) -> dict:
        return {m: self.ev.mot_summary(self.accs[m], self.names, self.hota[m]) for m in self.accs}

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


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description="MixDVAE multi-object tracking, scored next to KF-VEM and SORT.")
    ap.add_argument("config", help="INI file, e.g. config/cfg_dvae_vem_mot.ini")
    args = ap.parse_args()
    cfg, baselines = load_cfg(args.config)
    user, tr = cfg["User"], cfg["Training"]
    if tr["num_threads"]:
        torch.set_num_threads(tr["num_threads"])
    torch.manual_seed(tr["seed"])
    np.random.seed(tr["seed"])
    model, ckpt = load_mot_dvae(cfg)
    extra = load_extra_dvaes(cfg)
    items = load_samples(cfg)
    settings = vem_settings(cfg)
    run_dir = make_run_dir(user["save_root"], "MOT", user["run_name"] or "MixDVAE", Path(args.config))
    try:
        track_and_score(cfg, baselines, model, ckpt, extra, items, settings, run_dir)
    except UserError:     # nothing half-written: a run stopped by bad input leaves no run directory
        logger = logging.getLogger("mixdvae")
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def track_and_score(cfg: Config, baselines: list[str], model, ckpt: dict, extra: dict, items: list[dict],
                    settings: VEMSettings, run_dir: Path) -> None:
    """Run every method on every batch, write tracks, figures, metrics and the summary into ``run_dir``."""
    import pandas as pd

    from model.sort_tracker import sort_track
    from utils.mot_io import repair_boxes, write_results
    from utils.mot_plots import plot_iteration_curves, plot_tracks

    user, tr, frame_cfg, ev, vem = cfg["User"], cfg["Training"], cfg["DataFrame"], cfg["Eval"], cfg["VEM"]
    (run_dir / "figures").mkdir()
    logger = get_logger(run_dir, user["logger_type"])
    log = logger.info
    device = choose_device(tr["use_cuda"], log)
    model.to(device)
    log(f"run directory: {run_dir}")
    T, N = items[0]["gt"].shape[:2]
    log(f"data: {len(items)} samples ({T} frames, {N} targets) from {user['data_dir']}")
    log(f"DVAE: {tr['saved_dvae']} (epoch {ckpt.get('epoch', '?')}, {model.num_parameters()} parameters)")
    if user["print_model"]:
        log(str(model))
    log(f"VEM: {settings}; z_mode {vem['z_mode']}, finetune {tr['finetune']}")
    log(f"baselines: {', '.join(baselines) or 'none'}")

    def dvae(srnn):
        return SRNNDynamics(srnn, z_mode=vem["z_mode"], finetune=tr["finetune"], lr=tr["lr"], beta=tr["beta"],
                            var_scale=vem["dvae_var_scale"])

    labels = {**METHODS, **{f"mixdvae:{name}": f"MixDVAE-{name}" for name in extra}}
    runs = {"mixdvae": (dvae(model), settings), **kalman_methods(cfg, settings)}
    for name, (srnn, path, epoch) in extra.items():
        runs[f"mixdvae:{name}"] = (dvae(srnn.to(device)), settings)
        log(f"DVAE of MixDVAE-{name}: {path} (epoch {epoch}, {srnn.num_parameters()} parameters)")
    for m in ("kf_filter", "kf_vem"):
        if m in baselines:
            k, s = runs[m]
            log(f"{labels[m]}: tau {s.temperature:g}, init_subseq_len {s.init_subseq_len}, "
                f"accel_std_ratio {k.accel_std_ratio:g}")
    methods = ["mixdvae", *(f"mixdvae:{name}" for name in extra), *baselines]
    scores, seconds, plotted = Scores(ev["iou_threshold"]), dict.fromkeys(methods, 0.0), 0
    batches = range(0, len(items), frame_cfg["batch_size"])
    for start in tqdm(batches, desc="batches", disable=None):
        batch = collate_mot(items[start:start + frame_cfg["batch_size"]])
        det, mask, init = batch["det"].to(device), batch["det_mask"].to(device), batch["init"].to(device)
        gt = batch["gt"].numpy()
        scores.names.extend(batch["names"])
        tracks = {}
        for method in methods:
            torch.manual_seed(tr["seed"] + start)          # a row's draws do not depend on the rows run before it
            t0 = time.perf_counter()
            if method == "sort":
                out, result = sort_track(det.cpu(), mask.cpu(), init.cpu()), None
            else:
                dynamics, method_settings = runs[method]
                result = run_vem(det, mask, init, dynamics, method_settings, batch["image_size"])
                out = result.tracks
                check_tracks(labels[method], out, batch["names"], cfg)
            seconds[method] += time.perf_counter() - t0
            tracks[method], repaired = repair_boxes(out.cpu().numpy())
            if repaired:
                log(f"warning: {labels[method]}: {repaired} inverted or zero-size track box(es) in "
                    f"{', '.join(batch['names'][:3])}{', ...' if len(batch['names']) > 3 else ''} repaired "
                    "(x2 > x1, y2 > y1) before scoring and writing")
            scores.add(method, gt, tracks[method])
            if result is not None and result.iter_tracks is not None:
                scores.add_iterations(method, gt, result.iter_tracks.cpu().numpy())
            if result is not None and result.elbo:
                scores.add_elbo(method, result.elbo)
            write_results(run_dir / "tracks" / labels[method], batch["names"], tracks[method])
        for b in range(min(ev["num_plot_samples"] - plotted, len(batch["names"]))):
            name = batch["names"][b]
            plot_tracks(run_dir / "figures" / f"tracks_{name}.png", batch["det"][b].numpy(), gt[b],
                        {labels[m]: tracks[m][b] for m in methods}, title=name)
            plotted += 1
    log("time: " + ", ".join(f"{labels[m]} {s:.1f}s ({len(items) / max(s, 1e-9):.1f} samples/s)"
                             for m, s in seconds.items()))

    log("scoring: motmetrics CLEAR-MOT/ID metrics and TrackEval HOTA over every sample ...")
    tables = {labels[m]: t for m, t in scores.tables().items()}
    per_sample = pd.concat([t.drop(index="OVERALL").assign(method=m) for m, t in tables.items()])
    per_sample.index.name = "sample"
    per_sample.reset_index()[["method", "sample", *tables["MixDVAE"].columns]].to_csv(
        run_dir / "metrics_per_sample.csv", index=False, float_format="%.6g")
    summary = {m: {k: float(v) for k, v in t.loc["OVERALL"].items()} for m, t in tables.items()}
    curves = {labels[m]: c for m, c in scores.iteration_curves().items()}
    if curves:
        frame = pd.DataFrame({"iteration": np.arange(len(next(iter(curves.values()))["mota"]))})
        for m, c in curves.items():
            frame[f"{m}_mota"], frame[f"{m}_idf1"] = c["mota"], c["idf1"]
        frame.to_csv(run_dir / "metric_per_iteration.csv", index=False, float_format="%.6f")
        refs = {m: {"mota": summary[m]["mota"], "idf1": summary[m]["idf1"]} for m in summary if m not in curves}
        plot_iteration_curves(run_dir / "figures" / "mota_idf1_per_iteration.png", curves, refs)
    if scores.elbo:
        frame = pd.DataFrame({"iteration": np.arange(1, settings.n_iter + 1)})
        for m, terms in scores.elbo.items():
            for k, v in terms.items():
                if np.isfinite(v).any():                               # KF-VEM has no DVAE loss
                    frame[f"{labels[m]}_{k}"] = v / len(items)
                no_dvae = k == "dvae_loss" and not m.startswith("mixdvae") and np.isnan(v).all()
                if not np.isfinite(v).all() and not no_dvae:
                    log(f"warning: ELBO term {labels[m]} {k} is not finite at {int((~np.isfinite(v)).sum())} "
                        f"of {len(v)} iterations")
        frame.to_csv(run_dir / "elbo_per_iteration.csv", index=False, float_format="%.6g")
        log("ELBO terms at the last iteration (per sample): " + "; ".join(
            f"{col} {frame[col].iloc[-1]:.4g}" for col in frame.columns[1:]))
    table = results_table(tables, len(items))
    (run_dir / "summary.txt").write_text(table)
    (run_dir / "summary.json").write_text(json.dumps(
        {"num_samples": len(items), "checkpoint": str(tr["saved_dvae"]), "checkpoint_epoch": ckpt.get("epoch"),
         "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
         "method_settings": {labels[m]: {"assignment_temperature": s.temperature,
                                         "init_subseq_len": s.init_subseq_len}
                             for m, (_, s) in runs.items() if m in methods},
         "extra_dvae": {f"MixDVAE-{n}": path for n, (_, path, _) in extra.items()},
         "seconds": {labels[m]: s for m, s in seconds.items()}, "methods": summary}, indent=2) + "\n")
    log("\n" + table)
    log(f"outputs in {run_dir}")


if __name__ == "__main__":
    run_main(main)
