"""INI keys of ``mixdvae_scass.py`` (MixDVAE for SC-ASS, docs/method.md §6–§8).

Reference values follow the original MixDVAE SC-ASS configuration; keys the reference does
not have (``v_x_floor``, ``es_power``, ``z_mode``, ``[Eval]``, ``[NMF]``...) carry documented
defaults. ``[Network]`` describes the two pre-trained DVAEs: a checkpoint whose architecture
or ``[STFT]`` differs is refused, naming the key.
"""

from __future__ import annotations

from utils.config import Key
from utils.config_keys import NETWORK, STFT, USER_COMMON

BASELINES = ("nmf", "ibm", "mixture")
METRICS = ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar", "rmse")
SOURCE_NAMES = ("flute", "speech")   # s1, s2
OUTPUTS = ("mean", "wiener")         # [VEM] output, model/scass_output.py

VEM_SCASS = [
    *USER_COMMON,
    Key("User", "data_dir", "dir", help="directory of mixture .npz files (data/scass_mixture_audio_generation.py)"),
    *NETWORK,
    *STFT,
    Key("VEM", "N_iter_total", "int", 70, help="number of VEM iterations", low=1),
    Key("VEM", "convergence_tol", "float", 0.0,
        help="a mixture stops iterating once the mean absolute change of its eta is at most this in 2 iterations "
             "in a row (N_iter_total becomes a cap; not with finetune); 0 = always run N_iter_total",
        low=0.0, high=1.0),
    Key("VEM", "num_source", "int", 2, help="number of sources (mixtures hold s1 = flute, s2 = speech)",
        low=2, high=2),
    Key("VEM", "num_freqency", "int", 513,
        help="frequency bins F (reference spelling); must equal the STFT's nfft/2+1 and the DVAEs' x_dim", low=1),
    Key("VEM", "ratio_v_theta_x", "float", 0.03, help="observation variance v_x = ratio * mixture power (6.1)",
        low=1e-12),
    Key("VEM", "v_x_floor", "float", 1e-8, help="lower bound of v_x, so silent bins keep a positive variance (6.1)",
        low=1e-30),
    Key("VEM", "mixture_power_db", "float", 15.0,
        help="every mixture is scaled so that the mean power of its STFT is this many dB (the level of the "
             "DVAEs' training data), and the estimates back: separation does not depend on the input gain",
        low=-100.0, high=100.0),
    Key("VEM", "es_power", "choice", "sample",
        help="what drives the DVAE recurrence in E-S (6.3): the power of a sample of q(s_{t-1}) (original) "
             "or its expected power",
        choices=("sample", "expected")),
    Key("VEM", "z_mode", "choice", "sample", help="E-Z (6.4) takes a sample of q(z) or its mean",
        choices=("sample", "mean")),
    Key("VEM", "output", "choice", "mean",
        help="what is resynthesised: mean = the posterior means of q(s) (the paper); wiener = the mixture STFT "
             "masked by the posterior powers (squared mean + variance), so the sources add up to the mixture "
             "(not in the paper; model/scass_output.py)",
        choices=OUTPUTS),
    Key("VEM", "save_all_iters", "bool", True,
        help="score the estimates after every iteration on the first batch (metric-per-iteration figure)"),
    Key("Training", "use_cuda", "bool", False, help="use CUDA when available"),
    Key("Training", "finetune", "bool", False, help="fine-tune copies of the DVAEs during the VEM (6.6)"),
    Key("Training", "lr", "float", 0.001, help="Adam learning rate of the fine-tuning", low=1e-8, high=1.0),
    Key("Training", "beta", "float", 0.01, help="KL weight of the fine-tuning loss (4.5)", low=0),
    Key("Training", "saved_dvae_s1", "file", help="checkpoint of the source-1 (flute) DVAE"),
    Key("Training", "saved_dvae_s2", "file", help="checkpoint of the source-2 (speech) DVAE"),
    Key("Training", "seed", "int", 0, help="random seed (samples of q(s) and q(z))", low=0),
    Key("Training", "num_threads", "int", 0, help="torch CPU threads (0 = torch default)", low=0),
    Key("DataFrame", "batch_size", "int", 64, help="mixtures per VEM batch", low=1),
    Key("DataFrame", "sequence_len", "int", 50, help="STFT frames per mixture (checked against the files)", low=2),
    Key("Eval", "baselines", "str", "nmf,ibm,mixture",
        help="comma list of baselines run next to MixDVAE: nmf, ibm, mixture (may be empty)"),
    Key("Eval", "metrics", "str", ",".join(METRICS), help="comma list among " + ", ".join(METRICS)),
    Key("Eval", "metric_workers", "int", 0,
        help="processes that compute the metrics of a batch's mixtures in parallel (the serial rows, in the "
             "same order); "
             "0 = one per CPU core this run may use (divided among torchrun ranks), 1 = in the main process",
        low=0),
    Key("Eval", "num_audio_examples", "int", 5,
        help="separated wavs and spectrogram figures for the first N mixtures", low=0),
    Key("NMF", "train_dir_s1", "path", "data/generated/surrogate/flute/train",
        help="flute training audio of the NMF dictionary: the flute DVAE's training data (any rate, mono/stereo)"),
    Key("NMF", "train_dir_s2", "path", "data/generated/surrogate/speech/train",
        help="speech training audio of the NMF dictionary: the speech DVAE's training data"),
    Key("NMF", "n_components", "int", 32, help="dictionary atoms per source", low=1),
    Key("NMF", "beta", "choice", "kl", help="divergence: kl (on magnitudes) or is (on power)", choices=("kl", "is")),
    Key("NMF", "iterations", "int", 100, help="multiplicative updates to learn each dictionary", low=1),
    Key("NMF", "iterations_separation", "int", 50, help="multiplicative updates for the activations", low=1),
    Key("NMF", "max_frames", "int", 20000, help="training frames per source (random subset)", low=1),
    Key("NMF", "cache_file", "path", "",
        help="dictionary cache (.npz + .json); empty = save_root/nmf_cache/nmf_<settings hash>.npz; refitted when "
             "the training files or settings change, used as is when the training directories are absent"),
]
