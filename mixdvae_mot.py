"""Track N objects with MixDVAE and score it next to KF-VEM and a SORT-style tracker.

    python mixdvae_mot.py config/cfg_dvae_vem_mot.ini [--set VEM.N_iter_total=5 ...] [--print-config]

The model and the VEM are described equation by equation in docs/method.md (§5 there). The INI
(with its ``--set`` overrides), the DVAE checkpoint (against any [Network] keys given) and every
sample (N = num_source, at most num_obs detections per frame, valid init boxes) are checked first;
only then is ``save_root/MOT_<name>_<timestamp>/`` created, holding:

- the effective INI (overrides applied) and ``log.txt``;
- ``summary.txt`` (the table printed at the end) and ``summary.json`` (with the run's provenance);
- ``metrics_per_item.csv`` (one row per sample and method);
- ``metric_per_iteration.csv`` (MOTA/IDF1 after the initialisation and every VEM iteration) and
  ``elbo_per_iteration.csv`` (ELBO terms, dataset means; the DVAE loss as [VEM] dvae_loss_every computes it);
- ``trackers/``, ``gt/`` and ``seqmaps/``: the MOTChallenge layout TrackEval reads (utils/mot_export.py);
- ``figures/``: tracks of the first samples over detections and ground truth, MOTA/IDF1 per iteration.

Every method has its own settings: the KF-VEM filter and smoother take tau, the initialisation window and
the process noise from [KF] (empty keys inherit), and [Eval] extra_dvae adds one MixDVAE row per further
checkpoint ("MixDVAE-<name>").
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.mot_dataset import MOTSampleDataset, collate_mot
from model.dvae_choice import DVAEChoice, run_row
from model.kf_vem import KalmanDynamics
from model.vem_mot import SRNNDynamics, VEMSettings, valid_detections
from utils.cli import script_config, seed_and_threads
from utils.config import Config, comma_list, load_config
from utils.config_keys_mot import BASELINES, VEM_MOT
from utils.distributed import Ranks, start
from utils.errors import UserError, run_main
from utils.mot_dvaes import load_choice_dvaes, load_extra_dvaes, load_mot_dvae
from utils.mot_scores import Scores, results_table
from utils.output_dir import atomic_write
from utils.provenance import provenance
from utils.run_dir import check_output_root, discard_on_user_error, get_logger, make_run_dir
from utils.stage_timer import StageTimer
from utils.workers import metric_workers

# pandas, utils.mot_eval (motmetrics, TrackEval, scipy), the SORT baseline and the plots are imported
# where they are used: together they take seconds to import, and a refused run should answer fast.

METHODS = {"mixdvae": "MixDVAE", "kf_filter": "KF-VEM-filter", "kf_vem": "KF-VEM-smoother", "sort": "SORT"}


# --------------------------------------------------------------------------- validation
def load_cfg(path: str, overrides: list[str] = ()) -> tuple[Config, list[str]]:
    """Parse and validate the INI with its ``--set`` overrides; returns the config and the baseline list."""
    cfg = load_config(path, VEM_MOT, overrides=overrides)
    if cfg["User"]["task_name"] != "MOT":
        raise UserError(f"{cfg.path} [User] task_name: mixdvae_mot.py needs MOT, got {cfg['User']['task_name']}")
    if len(cfg["DataFrame"]["normalize_range"]) != 2:
        raise UserError(f"{cfg.path} [DataFrame] normalize_range: expected two numbers (width, height), got "
                        f"{cfg['DataFrame']['normalize_range']}")
    check_output_root(cfg["User"]["save_root"], f"{cfg.path} [User] save_root")
    return cfg, comma_list(cfg["Eval"]["baselines"], BASELINES, f"{cfg.path} [Eval] baselines")


def load_samples(cfg: Config, ranks: Ranks | None = None) -> list[dict | None]:
    """Every sample of ``data_dir``, checked: N = num_source, at most num_obs detections per frame, valid
    init boxes (zero-area / inverted detections are skipped by the loader with a warning).

    Under torchrun only the samples of this rank's batches are read: the others are None."""
    ranks = ranks or Ranks()
    dataset = MOTSampleDataset(cfg["User"]["data_dir"])
    num_source, num_obs = cfg["VEM"]["num_source"], cfg["VEM"]["num_obs"]
    size = cfg["DataFrame"]["batch_size"]
    mine = {i for start in ranks.shard(range(0, len(dataset), size)) for i in range(start, start + size)}
    items, first = [], None
    for i in tqdm(range(len(dataset)), desc="loading samples", disable=None if ranks.main else True):
        if i not in mine:
            items.append(None)
            continue
        item = dataset[i]
        where = f"{dataset.files[i]}"
        if item["gt"].shape[1] != num_source or item["init"].shape != (num_source, 4):
            raise UserError(f"{where}: {item['gt'].shape[1]} targets but {cfg.path} [VEM] num_source = {num_source}")
        first = first or (dataset.files[i], len(item["gt"]))
        if len(item["gt"]) != first[1]:
            raise UserError(f"{where}: {len(item['gt'])} frames but {first[0]} has {first[1]} "
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


def scales_text(dynamics) -> str:
    """The E-S variance scale(s) of a MixDVAE row: "0.5", or for a choice whose DVAEs differ, one each ("0.5+0.3")."""
    scales = dynamics.var_scales if isinstance(dynamics, DVAEChoice) else (dynamics.var_scale,)
    return "+".join(f"{v:g}" for v in scales) if len(set(scales)) > 1 else f"{scales[0]:g}"


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
                       dvae_loss_every=vem["dvae_loss_every"], normalize=frame["normalize"],
                       normalize_range=tuple(frame["normalize_range"]))


# --------------------------------------------------------------------------- scoring
# --------------------------------------------------------------------------- main
def main() -> None:
    timer = StageTimer()                              # wall time per stage -> log and summary.json "timing"
    ranks = start()                                   # one rank, unless started by torchrun
    cfg, baselines = script_config("MixDVAE multi-object tracking, scored next to KF-VEM and SORT.",
                                   "config/cfg_dvae_vem_mot.ini", load_cfg)
    user, tr = cfg["User"], cfg["Training"]
    seed_and_threads(tr["seed"], tr["num_threads"])
    with timer("setup"):
        model, ckpt = load_mot_dvae(cfg)
        choice = load_choice_dvaes(cfg, model)
        model = (model, *choice) if choice else model
        extra = load_extra_dvaes(cfg)
    with timer("data loading"):
        items = ranks.run_checked(load_samples, cfg, ranks)    # a bad sample in any rank's shard stops every rank
    lengths = {n for n in ranks.all_gather(next((len(i["gt"]) for i in items if i), None)) if n is not None}
    if len(lengths) > 1:
        raise UserError(f"{user['data_dir']}: samples of {sorted(lengths)} frames (one data_dir must hold samples "
                        "of one length)")
    settings = vem_settings(cfg)
    if not ranks.main:
        track_and_score(cfg, baselines, model, ckpt, extra, items, settings, None, ranks, timer)
        return
    run_dir = make_run_dir(user["save_root"], "MOT", user["run_name"] or "MixDVAE", cfg)
    with discard_on_user_error(run_dir, logging.getLogger("mixdvae")):   # bad input leaves no run directory
        track_and_score(cfg, baselines, model, ckpt, extra, items, settings, run_dir, ranks, timer)


def track_and_score(cfg: Config, baselines: list[str], model, ckpt: dict, extra: dict, items: list[dict | None],
                    settings: VEMSettings, run_dir: Path | None, ranks: Ranks, timer: StageTimer | None = None) -> None:
    """Run every method on every batch, write tracks, figures, metrics and the summary into ``run_dir``.

    ``timer`` collects the wall time of every stage (VEM of the main MixDVAE row, the extra MixDVAE rows, the
    baselines, metrics, outputs; under torchrun each batch's stage times are added up over the ranks), logged
    at the end and written to summary.json ("timing").

    Under torchrun each rank runs its batches (``items`` holds its samples) and rank 0 gathers the per-batch
    tracks and scores, in batch order, and writes everything (the other ranks pass ``run_dir`` None)."""
    import pandas as pd

    from model.sort_tracker import sort_track
    from utils.mot_export import TrackEvalExport
    from utils.mot_io import repair_boxes
    from utils.mot_plots import plot_iteration_curves, plot_tracks

    user, tr, frame_cfg, ev, vem = cfg["User"], cfg["Training"], cfg["DataFrame"], cfg["Eval"], cfg["VEM"]
    timer = timer or StageTimer()
    if run_dir is not None:
        (run_dir / "figures").mkdir()
    logger = get_logger(run_dir, user["logger_type"] if ranks.main else 0)
    log = logger.info
    device = ranks.device(tr["use_cuda"], log)
    models = model if isinstance(model, tuple) else (model,)
    for one in models:
        one.to(device)
    log(f"run directory: {run_dir}")
    T, N = next(item for item in items if item is not None)["gt"].shape[:2]
    log(f"data: {len(items)} samples ({T} frames, {N} targets) from {user['data_dir']}")
    log(f"DVAE: {tr['saved_dvae']} (epoch {ckpt.get('epoch', '?')}, {models[0].num_parameters()} parameters)"
        + (f"; chosen per sequence against {tr['choice_dvae']} (judged by {tr['choice_score']})"
           if len(models) > 1 else ""))
    if user["print_model"]:
        log(str(models[0]))
    log(f"VEM: {settings}; z_mode {vem['z_mode']}, finetune {tr['finetune']}, E-S {vem['dvae_es']}, "
        f"var x{vem['dvae_var_scale']:g} ({vem['dvae_es_var']})")
    log(f"baselines: {', '.join(baselines) or 'none'}")

    def dvae(srnn, es_mode=None, var_scale=None, es_var=None, choice_score=None):
        if isinstance(srnn, tuple):                 # several DVAEs: the row chooses one per sequence
            scales = var_scale if isinstance(var_scale, tuple) else (var_scale,) * len(srnn)
            return DVAEChoice([dvae(s, es_mode, v, es_var) for s, v in zip(srnn, scales)],
                              score=choice_score or tr["choice_score"])
        # the propagate/smoother E-S needs a decoder anchored on s_{t-1}: other DVAEs keep the paper's filter
        es_mode = es_mode or (vem["dvae_es"] if srnn.increments else "filter")
        return SRNNDynamics(srnn, z_mode=vem["z_mode"], finetune=tr["finetune"], lr=tr["lr"], beta=tr["beta"],
                            var_scale=var_scale or vem["dvae_var_scale"], es_mode=es_mode,
                            es_var=es_var or vem["dvae_es_var"])

    labels = {**METHODS, **{f"mixdvae:{name}": f"MixDVAE-{name}" for name in extra}}
    runs = {"mixdvae": (dvae(model), settings), **kalman_methods(cfg, settings)}
    for name, (srnn, path, epoch, row) in extra.items():
        row_settings = replace(settings, temperature=row.tau or settings.temperature,
                               init_subseq_len=row.init or settings.init_subseq_len)
        srnn = tuple(s.to(device) for s in srnn) if isinstance(srnn, tuple) else srnn.to(device)
        runs[f"mixdvae:{name}"] = (dyn := dvae(srnn, row.es_mode, row.var_scale, row.es_var, row.choice_score),
                                        row_settings)
        size = "+".join(str(s.num_parameters()) for s in (srnn if isinstance(srnn, tuple) else (srnn,)))
        log(f"DVAE of MixDVAE-{name}: {path} (epoch {epoch}, {size} parameters"
            f"{f'; chosen per sequence, judged by {dyn.score}' if isinstance(srnn, tuple) else ''}); "
            f"E-S {dyn.es_mode}, var x{scales_text(dyn)} ({dyn.es_var}), tau {row_settings.temperature:g}, "
            f"init_subseq_len {row_settings.init_subseq_len}")
    for m in ("kf_filter", "kf_vem"):
        if m in baselines:
            k, s = runs[m]
            log(f"{labels[m]}: tau {s.temperature:g}, init_subseq_len {s.init_subseq_len}, "
                f"accel_std_ratio {k.accel_std_ratio:g}")
    methods = ["mixdvae", *(f"mixdvae:{name}" for name in extra), *baselines]
    scores, seconds = Scores(ev["iou_threshold"]), dict.fromkeys(methods, 0.0)

    def track_batch(start: int) -> tuple[int, dict]:
        """Every method on the batch starting at sample ``start``: tracks, scores, timings and warnings."""
        batch = collate_mot(items[start:start + frame_cfg["batch_size"]])
        det, mask, init = batch["det"].to(device), batch["det_mask"].to(device), batch["init"].to(device)
        gt = batch["gt"].numpy()
        part = Scores(ev["iou_threshold"])
        part.names.extend(batch["names"])
        tracks, seconds, notes, stages = {}, {}, [], StageTimer()
        for method in methods:
            torch.manual_seed(tr["seed"] + start)          # a row's draws do not depend on the rows run before it
            t0 = time.perf_counter()
            if method == "sort":
                out, result = sort_track(det.cpu(), mask.cpu(), init.cpu()), None
            else:
                dynamics, method_settings = runs[method]
                result = run_row(dynamics, det, mask, init, method_settings, batch["image_size"], vem["upsample"])
                out = result.tracks
                check_tracks(labels[method], out, batch["names"], cfg)
            seconds[method] = time.perf_counter() - t0
            stages.add("VEM" if method == "mixdvae" else "VEM, extra MixDVAE rows" if method.startswith("mixdvae:")
                       else "baselines", seconds[method])
            t0 = time.perf_counter()
            tracks[method], repaired = repair_boxes(out.cpu().numpy())
            if repaired:
                notes.append(f"warning: {labels[method]}: {repaired} inverted or zero-size track box(es) in "
                             f"{', '.join(batch['names'][:3])}{', ...' if len(batch['names']) > 3 else ''} "
                             "repaired (x2 > x1, y2 > y1) before scoring and writing")
            part.add(method, gt, tracks[method])
            if result is not None and result.iter_tracks is not None:
                part.add_iterations(method, gt, result.iter_tracks.cpu().numpy())
            if result is not None and result.elbo:
                part.add_elbo(method, result.elbo)
            stages.add("metrics", time.perf_counter() - t0)
        plots = batch["det"][:max(0, ev["num_plot_samples"] - start)].numpy()
        export_keys = ("gt", "names", "start_frames", "image_size", "gt_ids")
        return start, dict(names=batch["names"], gt=gt, det=plots, tracks=tracks, scores=part, seconds=seconds,
                           notes=notes, batch={k: batch[k] for k in export_keys}, stages=stages.seconds)

    batches = tqdm(ranks.shard(range(0, len(items), frame_cfg["batch_size"])), desc="batches",
                   disable=None if ranks.main else True)
    records = (track_batch(start) for start in batches)
    if ranks.distributed:                 # a failure on any rank stops every rank here
        records = ranks.gather_ordered(records)
        if not ranks.main:
            return
    export = TrackEvalExport(run_dir, ev["benchmark"], ev["split"] or Path(user["data_dir"]).resolve().name)
    for _, record in records:             # in batch order, as one process would
        timer.merge(record["stages"])
        t_out = time.perf_counter()
        scores.merge(record["scores"])
        export.add_ground_truth(record["batch"])
        for method in methods:
            seconds[method] += record["seconds"][method]
            export.add_tracks(labels[method], record["batch"], record["tracks"][method])
        for note in record["notes"]:
            log(note)
        for b, det in enumerate(record["det"]):
            name = record["names"][b]
            plot_tracks(run_dir / "figures" / f"tracks_{name}.png", det, record["gt"][b],
                        {labels[m]: record["tracks"][m][b] for m in methods}, title=name)
        timer.add("outputs", time.perf_counter() - t_out)
    export.write_seqmap()
    log(f"tracks in MOTChallenge layout for TrackEval: {run_dir / 'trackers' / export.gt_set}")
    log("time: " + ", ".join(f"{labels[m]} {s:.1f}s ({len(items) / max(s, 1e-9):.1f} samples/s)"
                             for m, s in seconds.items()))

    workers = metric_workers(ev["metric_workers"])
    log(f"scoring: motmetrics CLEAR-MOT/ID metrics and TrackEval HOTA over every sample ({workers} process(es)) ...")
    with timer("metrics"):
        tables = {labels[m]: t for m, t in scores.tables(workers).items()}
    t_out = time.perf_counter()
    per_sample = pd.concat([t.drop(index="OVERALL").assign(method=m) for m, t in tables.items()])
    per_sample.index.name = "item"
    per_sample.reset_index()[["item", "method", *tables["MixDVAE"].columns]].to_csv(
        run_dir / "metrics_per_item.csv", index=False, float_format="%.6g")
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
    atomic_write(run_dir / "summary.txt", table)
    timer.add("outputs", time.perf_counter() - t_out)
    atomic_write(run_dir / "summary.json", json.dumps(
        {"num_items": len(items), "checkpoint": str(tr["saved_dvae"]), "choice_dvae": tr["choice_dvae"],
         "checkpoint_epoch": ckpt.get("epoch"),
         "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
         "method_settings": {labels[m]: {"assignment_temperature": s.temperature,
                                         "init_subseq_len": s.init_subseq_len}
                             for m, (_, s) in runs.items() if m in methods},
         "extra_dvae": {f"MixDVAE-{n}": path for n, (_, path, *_) in extra.items()},
         "seconds": {labels[m]: s for m, s in seconds.items()}, "timing": timer.as_dict(), "methods": summary,
         "provenance": provenance(cfg, tr["seed"], device)}, indent=2) + "\n")
    log("\n" + table)
    log(timer.line())
    log(f"outputs in {run_dir}")


if __name__ == "__main__":
    run_main(main)
