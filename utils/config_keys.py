"""Every INI key the three scripts read, with defaults, meaning and valid range.

The lists here are the single source of truth: scripts validate against them before doing
any work, and the README's config reference is generated from them
(``python tools/config_reference.py``; a test checks the README is up to date).
"""

from __future__ import annotations

from utils.config import Key

TASKS = ("MOT", "SC-ASS")

USER_COMMON = [
    Key("User", "task_name", "choice", help="which application the DVAE serves", choices=TASKS),
    Key("User", "save_root", "path", "output", help="root folder of run directories"),
    Key("User", "run_name", "str", "", help="tag in the run directory name (default: the script's)"),
    Key("User", "logger_type", "int", 3, help="1 console, 2 log file, 3 both", low=1, high=3),
    Key("User", "print_model", "bool", True, help="log the network architecture"),
]

NETWORK = [
    Key("Network", "name", "choice", "SRNN", help="DVAE type (only SRNN is implemented)", choices=("SRNN",)),
    Key("Network", "x_dim", "int", help="observation dimension (4 boxes, 513 STFT bins)", low=1),
    Key("Network", "z_dim", "int", help="latent dimension", low=1),
    Key("Network", "activation", "choice", "tanh", help="MLP activation", choices=("tanh", "relu")),
    Key("Network", "dense_x_h", "intlist", [], help="MLP on x_{t-1} before the h LSTM (4.1); empty = identity"),
    Key("Network", "dim_RNN_h", "int", help="units of the forward LSTM h (4.1)", low=1),
    Key("Network", "num_RNN_h", "int", 1, help="layers of the h LSTM", low=1),
    Key("Network", "dense_hx_g", "intlist", [], help="MLP on [h_t, x_t] before the backward LSTM g (4.4)"),
    Key("Network", "dim_RNN_g", "int", 0, help="units of the backward LSTM g; 0 = g_t = [h_t, x_t] (4.4)", low=0),
    Key("Network", "num_RNN_g", "int", 1, help="layers of the g LSTM", low=1),
    Key("Network", "dense_gz_z", "intlist", [], help="inference MLP on [g_t, z_{t-1}] (4.4)"),
    Key("Network", "dense_hz_x", "intlist", [], help="generation MLP on [h_t, z_t] (4.3)"),
    Key("Network", "dense_hz_z", "intlist", [], help="prior MLP on [h_t, z_{t-1}] (4.2)"),
    Key("Network", "dropout_p", "float", 0.0, help="dropout probability in the MLPs", low=0, high=0.99),
    Key("Network", "increments", "bool", False,
        help="MOT only, beyond the reference: recurrence/encoder also see x_t - x_{t-1}, decoder mean = "
             "x_{t-1} + increment"),
    Key("Network", "velocity", "bool", False,
        help="MOT only, needs increments: decoder mean = 2 x_{t-1} - x_{t-2} + output from frame 3 on (the network "
             "predicts the deviation from constant velocity)"),
]
ARCH_KEYS = tuple(k.name for k in NETWORK if k.name != "dropout_p")

STFT = [
    Key("STFT", "wlen_sec", "float", 0.064, help="analysis window length in seconds (rounded up to 2^k samples)",
        low=1e-3, high=1.0),
    Key("STFT", "hop_percent", "float", 0.25, help="hop as a fraction of the window", low=0.01, high=1.0),
    Key("STFT", "fs", "int", 16000, help="sample rate (audio is resampled to it)", low=1000),
    Key("STFT", "zp_percent", "int", 0, help="zero padding factor: nfft = wlen * (1 + zp_percent)", low=0),
    Key("STFT", "trim", "bool", True, help="trim leading/trailing silence (30 dB) of training files"),
]
STFT_ARCH_KEYS = ("wlen_sec", "hop_percent", "fs", "zp_percent")

TRAIN = [
    *USER_COMMON,
    Key("User", "train_data_dir", "dir", help="training data: MOT .npz trajectories / audio files"),
    Key("User", "val_data_dir", "dir", help="validation data, same layout as train_data_dir"),
    *NETWORK,
    Key("Training", "beta", "float", 1.0, help="KL weight beta of the loss (4.5)", low=0),
    Key("Training", "use_cuda", "bool", False, help="use CUDA when available"),
    Key("Training", "lr", "float", 0.001, help="Adam learning rate", low=1e-8, high=1.0),
    Key("Training", "n_epochs", "int", 500, help="maximum number of epochs", low=1),
    Key("Training", "early_stop_patience", "int", 50,
        help="stop after this many epochs without a better validation loss (counted once the schedules "
             "are at their final values)", low=1),
    Key("Training", "save_frequency", "int", 10, help="also keep a numbered checkpoint every N epochs", low=1),
    Key("Training", "kl_warmup", "bool", True, help="KL weight rises 0 -> 1 over the first ss_start epochs"),
    Key("Training", "schedule_sampling", "bool", True,
        help="scheduled sampling of the recurrence input (4.1) between ss_start and ss_end"),
    Key("Training", "ss_start", "int", 20, help="epoch where scheduled sampling starts / KL warm-up ends", low=0),
    Key("Training", "ss_end", "int", 100, help="epoch where scheduled sampling reaches probability ss_max", low=0),
    Key("Training", "ss_max", "float", 1.0,
        help="final scheduled-sampling probability (1 = the reference: fully free-running recurrence)",
        low=0.0, high=1.0),
    Key("Training", "input_noise", "float", 0.0,
        help="MOT: feed boxes with noise std U(0, input_noise) x box size, score against the clean ones "
             "(denoising pre-training; 0 = off, the reference)", low=0.0, high=1.0),
    Key("Training", "gap_prob", "float", 0.0,
        help="MOT: from ss_start on, each training sequence gets, with this probability, one free-running gap "
             "(a missed target: prior z, own predictions drive the recurrence; causal encoder only; 0 = off, "
             "the reference)", low=0.0, high=1.0),
    Key("Training", "interference_dir", "path", "",
        help="SC-ASS: audio of another source (e.g. flute for the speech DVAE) whose power is added to the input "
             "sequences, scored against the clean ones (data/interference.py; empty = off, the reference)"),
    Key("Training", "interference_snr", "str", "0, 20",
        help="SC-ASS: source-to-interference ratio range 'low, high' in dB, drawn per sequence"),
    Key("Training", "interference_prob", "float", 0.5,
        help="SC-ASS: share of the training sequences that get interference", low=0.0, high=1.0),
    Key("Training", "gap_min", "int", 8, help="shortest free-running gap, frames", low=1),
    Key("Training", "gap_max", "int", 15, help="longest free-running gap, frames", low=1),
    Key("Training", "init_from", "path", "",
        help="start from this checkpoint's weights and feature statistics (same [Network]; empty = random)"),
    Key("Training", "stats_from", "path", "",
        help="random weights, but this checkpoint's feature statistics (input, increment scales) instead of the "
             "training data's, so that the DVAE can be chosen against it per sequence ([Training] choice_dvae); "
             "empty = from the data"),
    Key("Training", "seed", "int", 128, help="random seed", low=0),
    Key("Training", "num_threads", "int", 0, help="torch CPU threads (0 = torch default)", low=0),
    Key("Training", "continue_train", "bool", False, help="resume the run in resume_dir"),
    Key("Training", "resume_dir", "path", "", help="run directory to resume (with continue_train)"),
    Key("Training", "which_epoch", "str", "latest", help="checkpoint to resume from: latest, best or an epoch"),
    Key("DataFrame", "batch_size", "int", 256, help="sequences per batch", low=1),
    Key("DataFrame", "shuffle", "bool", True, help="shuffle training sequences every epoch"),
    Key("DataFrame", "sequence_len", "int", 60, help="frames per training sequence", low=2),
    Key("DataFrame", "use_random_seq", "bool", False,
        help="audio: one random crop per file per epoch instead of tiling"),
    Key("DataFrame", "max_train_batches", "int", 0, help="cap on batches per epoch (0 = all); for quick runs", low=0),
]
TRAIN_AUDIO = TRAIN + STFT
