"""INI keys of ``mixdvae_mot.py`` (MixDVAE for multi-object tracking, docs/method.md §5, §7, §8).

Reference values follow the original MixDVAE MOT configuration ([VEM] N_iter_total 70,
num_source 3, num_obs 3, std_ratio 0.04, init_iter_number 20, init_subseq_len 30; [Training]
finetune False, lr 0.001, beta 1; [DataFrame] batch_size 128, normalize_range 1920, 1080). Keys
the reference does not have carry documented defaults. The ``[Network]`` section is optional:
the architecture comes from the checkpoint, and any [Network] key that *is* given must match it
(a mismatch stops the run, naming the key).
"""

from __future__ import annotations

from dataclasses import replace

from utils.config import Key
from utils.config_keys import NETWORK, USER_COMMON

BASELINES = ("kf_filter", "kf_vem", "sort")

# Every [Network] key optional (default None = "not given, not compared").
NETWORK_OPTIONAL = [replace(k, default=None, help=k.help + " (optional: checked against the checkpoint)")
                    for k in NETWORK]

VEM_MOT = [
    *USER_COMMON,
    Key("User", "data_dir", "dir",
        help="directory of N-target sample .npz files (data/mot_tracking_data_generation.py)"),
    *NETWORK_OPTIONAL,
    Key("VEM", "N_iter_total", "int", 70, help="VEM iterations on the whole sequence after initialisation", low=0),
    Key("VEM", "num_source", "int", 3, help="number of sources N; must equal the samples' number of targets",
        low=1),
    Key("VEM", "num_obs", "int", 3,
        help="most detections a frame may hold (a frame with more stops the run: raise it for clutter data)",
        low=1),
    Key("VEM", "o_dim", "int", 4, help="observation dimension: boxes (x1, y1, x2, y2); must equal the DVAE's x_dim",
        low=4, high=4),
    Key("VEM", "std_ratio", "float", 0.04,
        help="observation std = std_ratio x detection width (x) / height (y) (5.1)", low=1e-4, high=10.0),
    Key("VEM", "init_iter_number", "int", 20, help="VEM iterations per initialisation window (5.7)", low=0),
    Key("VEM", "init_subseq_len", "int", 30, help="frames per initialisation window (5.7)", low=1),
    Key("VEM", "convergence_tol", "float", 0.0,
        help="a sample stops iterating once its assignments eta change by at most this (largest absolute change) "
             "in 2 iterations in a row; N_iter_total and init_iter_number become caps; 0 = always run them all",
        low=0.0, high=1.0),
    Key("VEM", "upsample", "int", 1,
        help="run every VEM at this many times the data's frame rate (missing frames in between; results at "
             "the data's frames): for data recorded at 1/upsample of the rate the DVAE was trained on",
        low=1, high=16),
    Key("VEM", "assignment_temperature", "float", 0.1,
        help="tau, weight of the quadratic term of E-W (5.2); calibrated on a validation set (README)",
        low=1e-6, high=1e6),
    Key("VEM", "clutter_logprob", "float", None,
        help="log-likelihood of a clutter class relative to a source at zero distance, e.g. -10 (5.2); "
             "empty = no clutter class", low=-1e6, high=1e6),
    Key("VEM", "dvae_var_scale", "float", 1.0,
        help="E-S (5.4) uses dvae_var_scale x the DVAE variance sigma^2_theta (variance inflation; 1 = as trained), "
             "or with dvae_es_var = fixed, dvae_var_scale x delta_std^2",
        low=1e-6, high=1e6),
    Key("VEM", "dvae_es", "choice", "filter",
        help="E-S (5.4): filter = the paper's recursion; propagate = the prior variance also carries "
             "Var(s_{t-1}); smoother = propagate + a backward pass; iterated = smoother with h_t driven by "
             "the means E-Z saw (all but filter: increments DVAEs only)",
        choices=("filter", "propagate", "smoother", "iterated")),
    Key("VEM", "dvae_es_var", "choice", "model",
        help="variance of the E-S prediction (5.4): model = the decoder's sigma^2_theta(h_t, z_t) (the paper); "
             "fixed = dvae_var_scale x the training increments' variance delta_std^2, the same on every frame "
             "(README, Tracking, round 6); adaptive = that variance with a k per sequence re-estimated from the "
             "data after every E-S pass, starting at dvae_var_scale (covariance matching, README, Tracking, "
             "round 7)", choices=("model", "fixed", "adaptive")),
    Key("VEM", "z_mode", "choice", "sample", help="E-Z (5.3) takes a sample of q(z) or its mean",
        choices=("sample", "mean")),
    Key("VEM", "update_phi", "bool", False, help="re-estimate the observation variances every iteration (5.6)"),
    Key("VEM", "dvae_loss_every", "int", 1,
        help="the ELBO log's DVAE-loss term (5.8) costs one extra DVAE pass: compute it at iteration 1, every "
             "dvae_loss_every-th and the last, carried forward in between (1 = every iteration)", low=1),
    Key("VEM", "save_all_iters", "bool", True,
        help="keep the tracks of every iteration: MOTA/IDF1 per iteration (CSV and figure)"),
    Key("Training", "use_cuda", "bool", False, help="use CUDA when available"),
    Key("Training", "finetune", "bool", False,
        help="fine-tune a copy of the DVAE during the VEM, one Adam step per iteration, per batch (5.5)"),
    Key("Training", "lr", "float", 0.001, help="Adam learning rate of the fine-tuning", low=1e-8, high=1.0),
    Key("Training", "beta", "float", 1.0, help="KL weight of the DVAE loss (4.5) (fine-tuning, ELBO log)", low=0),
    Key("Training", "saved_dvae", "file", help="checkpoint of the pre-trained MOT DVAE (train_dvae_single.py)"),
    Key("Training", "choice_dvae", "str", "",
        help="more increments DVAEs for the main row, joined by +: it runs with saved_dvae and each of these and "
             "keeps, per sequence, the run with the better ELBO score (model/dvae_choice.py); empty = saved_dvae "
             "alone"),
    Key("Training", "choice_score", "choice", "own",
        help="how a choice of DVAEs judges each run's tracks: own (each run's own DVAE; round 8), first (every run "
             "judged by the first DVAE of the choice, one yardstick; round 11) or observations (the expected "
             "observation log-likelihood alone) (model/dvae_choice.py)",
        choices=("own", "first", "observations")),
    Key("Training", "seed", "int", 0, help="random seed (samples of q(z))", low=0),
    Key("Training", "num_threads", "int", 1,
        help="torch CPU threads (0 = torch default); the VEM's many small operations run fastest on 1", low=0),
    Key("DataFrame", "batch_size", "int", 128, help="samples per VEM batch", low=1),
    Key("DataFrame", "normalize", "choice", "fixed",
        help="coordinate normalisation: fixed (divide by normalize_range) or image_size (each sample's size)",
        choices=("fixed", "image_size")),
    Key("DataFrame", "normalize_range", "floatlist", [1920.0, 1080.0],
        help="(width, height) of the fixed normalisation: the resolution the DVAE's data was scaled to",
        low=1.0, high=1e6),
    Key("Eval", "baselines", "str", "kf_filter, kf_vem, sort",
        help="comma list of baselines run next to MixDVAE: kf_filter (KF-VEM, causal Kalman filter), "
             "kf_vem (KF-VEM, RTS smoother), sort (may be empty)"),
    Key("Eval", "extra_dvae", "str", "",
        help="more MixDVAE rows: comma list of "
             "name:checkpoint[:dvae_es[:dvae_var_scale[:dvae_es_var[:tau[:init[:choice_score]]]]]] "
             "(e.g. noncausal:model/pretrained/x.pt, or causal:model/pretrained/x.pt:propagate:2:fixed:0.03:5), each "
             "run with the [VEM] settings but its own E-S mode, variance scale, E-S variance, assignment_temperature "
             "and init_subseq_len when given, and shown as MixDVAE-<name>; checkpoint may join several increments "
             "DVAEs with + (a.pt+b.pt): the row runs each and keeps, per sequence, the run with the better ELBO "
             "score (model/dvae_choice.py), dvae_var_scale may then give one value per DVAE (1+0.3), and "
             "choice_score says how the runs are judged ([Training] choice_score) (may be empty)"),
    Key("Eval", "metric_workers", "int", 0,
        help="processes that compute the methods' metric tables in parallel (the same tables); 0 = one per CPU "
             "core, 1 = in the main process", low=0),
    Key("Eval", "num_plot_samples", "int", 4, help="samples drawn as track figures", low=0),
    Key("Eval", "benchmark", "str", "MixDVAE",
        help="benchmark name of the TrackEval export: trackers/<benchmark>-<split>/<method>/data/<seq>.txt"),
    Key("Eval", "split", "str", "", help="split name of the TrackEval export; empty = the data_dir folder's name"),
    Key("Eval", "iou_threshold", "float", 0.5,
        help="smallest IoU for a track to match a ground-truth box (motmetrics, MOTA/IDF1)", low=0.01, high=1.0),
    Key("KF", "accel_std_ratio", "float", 0.01,
        help="KF-VEM process noise: velocity change std per frame / box width (x) or height (y)", low=1e-8,
        high=10.0),
    Key("KF", "init_vel_std_ratio", "float", 0.1,
        help="KF-VEM frame-1 velocity prior std / box width (x) or height (y)", low=1e-8, high=100.0),
    Key("KF", "assignment_temperature", "float", None,
        help="KF-VEM's own tau (5.2), tuned like MixDVAE's (tools/tune_mot.py); empty = [VEM] assignment_temperature",
        low=1e-8, high=1e6),
    Key("KF", "init_subseq_len", "int", None,
        help="KF-VEM's own initialisation window (5.7); empty = [VEM] init_subseq_len", low=1),
    Key("KF", "filter_assignment_temperature", "float", None,
        help="tau of the KF-VEM filter only; empty = the [KF] (else [VEM]) value", low=1e-8, high=1e6),
    Key("KF", "filter_init_subseq_len", "int", None,
        help="init_subseq_len of the KF-VEM filter only; empty = the [KF] (else [VEM]) value", low=1),
    Key("KF", "filter_accel_std_ratio", "float", None,
        help="accel_std_ratio of the KF-VEM filter only; empty = [KF] accel_std_ratio", low=1e-8, high=10.0),
]
