"""Shared pieces of the separation experiment tools (``tune_scass.py``, ``scass_table.py``).

A mixture set is held in memory once; each method is a *point* (its settings) that returns the
SI-SDR of every mixture and source, so points of different methods are scored on exactly the same
mixtures and can be compared pair-wise. Only SI-SDR is computed: BSS-eval costs about 0.2 s per
method and mixture here, the VEM about 0.3 s, and the comparisons are about SI-SDR.

- :class:`MixDVAEPoint` runs ``model.vem_scass.run_vem``; with ``snapshots`` one VEM run scores
  several iteration counts (iteration ``i`` of a longer run is exactly an ``i``-iteration run: the
  same seed draws the same samples, and nothing in an iteration looks ahead), and with ``outputs``
  several output modes (``model.scass_output``: post-processing of the same posterior).
- :class:`NMFPoint` learns (and caches) supervised NMF dictionaries with ``model.nmf``, on the same
  trimmed training frames as ``mixdvae_scass.py``.
- :class:`StaticSpectrum` is a trivial source model for the VEM: one fixed variance spectrum, the mean
  training power per frequency, at every frame. In place of a DVAE it answers "does the learned
  dynamics add anything over a long-term average spectrum?".
- :func:`bootstrap_mean` and :func:`paired_difference` give percentile-bootstrap 95 % intervals over
  mixtures.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from data.mixture_dataset import MixtureDataset, collate  # noqa: E402
from model.nmf import SupervisedNMF  # noqa: E402
from model.oracle import ibm_estimates  # noqa: E402
from model.scass_output import OUTPUTS, source_estimates  # noqa: E402
from model.vem_scass import VEMSettings, run_vem  # noqa: E402
from utils.audio_metrics import si_sdr  # noqa: E402
from utils.checkpoint import load_dvae  # noqa: E402
from utils.errors import UserError  # noqa: E402
from utils.stft import STFT  # noqa: E402

SOURCES = ("flute", "speech")
STATIC = "static"
DEFAULT_DVAES = ("model/pretrained/flute_srnn_intf.pt", "model/pretrained/speech_srnn_bl.pt")
DEFAULT_TRAIN = ("data/generated/surrogate/flute/train", "data/generated/surrogate/speech/train")
# NMF's training data ([NMF] train_dir_s1 / s2): since round 5 the speech dictionary is learned on real speech
NMF_TRAIN = ("data/generated/surrogate/flute/train", "data/generated/real_speech_train/train")


def reference_stft() -> STFT:
    """The STFT of ``config/cfg_dvae_vem_scass.ini`` (64 ms sine window, hop 25 %, 16 kHz, F = 513)."""
    return STFT(16000, 0.064, 0.25)


# --------------------------------------------------------------------------- data
@dataclass
class MixtureSet:
    """One mixture folder in memory.

    Shape: mix_stft (B, T, F) complex; mixture (B, L); clean (B, 2, L) float64 (flute, speech).
    """

    path: str
    names: list[str]
    mix_stft: Tensor
    mixture: np.ndarray
    clean: np.ndarray

    def subset(self, index) -> MixtureSet:
        index = list(index)
        return MixtureSet(self.path, [self.names[i] for i in index], self.mix_stft[index], self.mixture[index],
                          self.clean[index])

    @property
    def length(self) -> int:
        return self.clean.shape[-1]


def load_set(data_dir: str | Path, stft: STFT) -> MixtureSet:
    """Every mixture of ``data_dir`` (sorted by name), with its STFT and references."""
    dataset = MixtureDataset(data_dir, stft)
    batch = collate([dataset[i] for i in range(len(dataset))])
    clean = torch.stack([batch["s1"], batch["s2"]], dim=1).double().numpy()
    return MixtureSet(str(data_dir), batch["name"], batch["mix_stft"], batch["mixture"].double().numpy(), clean)


def si_sdr_of(clean: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """SI-SDR in dB of every mixture and source. Shape: clean, estimates (B, N, L) -> (B, N)."""
    return np.array([[si_sdr(ref, est) for ref, est in zip(c, e)] for c, e in zip(clean, estimates)])


def score_spectra(data: MixtureSet, spectra: Tensor, stft: STFT) -> np.ndarray:
    """SI-SDR (B, N) of source STFT estimates (B, N, T, F)."""
    return si_sdr_of(data.clean, stft.istft(spectra, data.length).double().numpy())


# --------------------------------------------------------------------------- trivial source model
class StaticSpectrum(torch.nn.Module):
    """A source model with no dynamics for the audio VEM: v_theta,ft = v_f at every frame.

    It offers the parts of the SRNN interface that ``run_vem`` calls without fine-tuning
    (``reconstruct``, ``step``, ``state_h``, ``inference``, ``encode``); z is a dummy of size 1.

    Shape: power (F,) — a variance per frequency at the VEM's reference level.
    """

    z_dim = 1

    def __init__(self, power: Tensor):
        super().__init__()
        self.register_buffer("power", torch.as_tensor(power, dtype=torch.float32))

    def reconstruct(self, x: Tensor, sample: bool = False) -> tuple[Tensor]:
        return (self.power.expand_as(x),)

    def step(self, x_prev: Tensor | None, z_t: Tensor, state=None) -> tuple[tuple[Tensor], Tensor]:
        return (self.power.expand(z_t.shape[0], -1),), z_t

    @staticmethod
    def state_h(state: Tensor) -> Tensor:
        return state

    def inference(self, x: Tensor, h: Tensor, sample: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        z = x.new_zeros(*x.shape[:2], 1)
        return z, z, z

    def encode(self, x: Tensor, sample: bool = True) -> Tensor:
        return self.inference(x, x)[0]


def training_frames(train_dir: str | Path, stft: STFT) -> Tensor:
    """Power frames (T, F) of a source's training audio, trimmed as in DVAE pre-training."""
    from data.audio_dataset import SpectrogramDataset

    if not Path(train_dir).is_dir():
        raise UserError(f"training directory {str(train_dir)!r} does not exist (see README, "
                        "'Pre-training the DVAEs', for the command that builds it)")
    return torch.cat(SpectrogramDataset(train_dir, stft, sequence_len=1, trim=True).spectrograms).flatten(0, -2)


def static_spectrum(train_dir: str | Path, stft: STFT) -> StaticSpectrum:
    """:class:`StaticSpectrum` of the mean training power per frequency (peak-normalised files)."""
    return StaticSpectrum(training_frames(train_dir, stft).mean(dim=0))


# --------------------------------------------------------------------------- MixDVAE
@dataclass(frozen=True)
class MixDVAEPoint:
    """Settings of one MixDVAE run (``[VEM]`` / ``[Training]`` keys of ``mixdvae_scass.py``); the defaults are
    those of ``config/cfg_dvae_vem_scass.ini`` (``ratio_v_theta_x`` 0.0003 and the interference-trained flute DVAE
    since round 5 of the tuning on real speech, the Wiener output and the band-limit speech DVAE since round 3;
    round 3's are ``ratio_v_theta_x=0.05,flute=model/pretrained/flute_srnn.pt``, round 2's ``ratio_v_theta_x=0.1,
    flute=model/pretrained/flute_srnn.pt,speech=model/pretrained/speech_srnn.pt``, the paper's
    ``ratio_v_theta_x=0.03,output=mean,flute=model/pretrained/flute_srnn.pt,speech=model/pretrained/speech_srnn.pt``).

    ``finetune_lr`` 0 means no fine-tuning; otherwise one Adam step per VEM iteration at this
    learning rate (so the number of fine-tuning steps is ``n_iter``). ``flute`` / ``speech`` are
    checkpoints, or ``static`` for :class:`StaticSpectrum` of that source's training audio.
    ``output`` is ``[VEM] output``: ``mean``, the VEM's posterior means (§6, the method as specified),
    or ``wiener``, the mixture masked by the posterior powers (``model.scass_output``).
    """

    ratio_v_theta_x: float = 0.0003
    z_mode: str = "sample"
    finetune_lr: float = 0.0
    n_iter: int = 70
    es_power: str = "sample"
    mixture_power_db: float = 15.0
    flute: str = DEFAULT_DVAES[0]
    speech: str = DEFAULT_DVAES[1]
    train_flute: str = DEFAULT_TRAIN[0]
    train_speech: str = DEFAULT_TRAIN[1]
    output: str = "wiener"

    def options(self, n_iter: int | None = None) -> VEMSettings:
        return VEMSettings(n_iter=n_iter or self.n_iter, ratio_v_theta_x=self.ratio_v_theta_x, z_mode=self.z_mode,
                          es_power=self.es_power, finetune=self.finetune_lr > 0, lr=self.finetune_lr or 1e-3,
                          mixture_power_db=self.mixture_power_db)


class ModelCache:
    """Source models and NMF dictionaries, each built once per process."""

    def __init__(self, stft: STFT, nmf_dir: str | Path | None = None):
        self.stft = stft
        self.nmf_dir = Path(nmf_dir) if nmf_dir else None
        self._models: dict = {}

    def source_model(self, spec: str, train_dir: str) -> torch.nn.Module:
        key = (spec, train_dir if spec == STATIC else "")
        if key not in self._models:
            if spec == STATIC:
                self._models[key] = static_spectrum(train_dir, self.stft)
            else:
                self._models[key] = load_dvae(spec, stft=self.stft.as_dict(), head="is", where="the tool")[0]
        return self._models[key]

    def nmf(self, point: NMFPoint) -> SupervisedNMF:
        key = ("nmf", _digest(point.dictionary_key()))
        if key in self._models:
            return self._models[key]
        cache = self.nmf_dir / f"nmf_{_digest(point.dictionary_key())}.npz" if self.nmf_dir else None
        if point.dictionary:
            model = SupervisedNMF.load(point.dictionary)
        elif cache is not None and cache.is_file():
            model = SupervisedNMF.load(cache)
        else:
            frames = [training_frames(d, self.stft) for d in (point.train_flute, point.train_speech)]
            model = SupervisedNMF(n_components=point.n_components, beta=point.beta, n_iter_train=point.iterations,
                                  max_frames=point.max_frames, seed=point.seed).fit(frames)
            if cache is not None:
                tmp = cache.with_name(f".tmp-{os.getpid()}-{cache.name}")
                model.save(tmp)
                os.replace(tmp, cache)
        self._models[key] = model
        return model


def mixdvae_scores(point: MixDVAEPoint, data: MixtureSet, models: ModelCache, snapshots=(), outputs=(),
                   seed: int = 0, batch_size: int = 64) -> dict[tuple[str, int], np.ndarray]:
    """SI-SDR (B, N) of MixDVAE per (output, iterations): ``point.output`` and every mode in ``outputs``, each
    after ``point.n_iter`` iterations and after every iteration count in ``snapshots``, all from one VEM run.

    Batches of ``batch_size`` in name order after ``torch.manual_seed(seed)``: the same draws as
    ``mixdvae_scass.py`` with ``[Training] seed`` and ``[DataFrame] batch_size``.
    """
    modes = sorted({point.output, *outputs})
    if any(m not in OUTPUTS for m in modes):
        raise UserError(f"MixDVAE output must be one of {', '.join(OUTPUTS)}, got {', '.join(modes)}")
    dvaes = [models.source_model(point.flute, point.train_flute),
             models.source_model(point.speech, point.train_speech)]
    if point.finetune_lr > 0 and any(isinstance(m, StaticSpectrum) for m in dvaes):
        raise UserError("fine-tuning needs two DVAEs; a static source model has nothing to fine-tune")
    wanted = sorted({point.n_iter, *snapshots})
    spectra: dict[tuple[str, int], list[Tensor]] = {(m, i): [] for m in modes for i in wanted}
    torch.manual_seed(seed)
    for start in range(0, len(data.names), batch_size):
        x = data.mix_stft[start:start + batch_size]

        def keep(i, mu, v, eta, x=x):
            if i + 1 in wanted:
                for m in modes:
                    spectra[m, i + 1].append(source_estimates(x, mu, v, m).detach().clone())

        run_vem(dvaes, x, point.options(wanted[-1]), on_iteration=keep)
    return {key: score_spectra(data, torch.cat(s), models.stft) for key, s in spectra.items()}


# --------------------------------------------------------------------------- NMF
@dataclass(frozen=True)
class NMFPoint:
    """Settings of the supervised NMF baseline (``[NMF]`` keys of ``mixdvae_scass.py``); the defaults are those of
    ``config/cfg_dvae_vem_scass.ini`` (96 atoms, 400 separation iterations and the real-speech training set since
    round 5 of the tuning on real speech; round 3's are ``n_components=8,iterations_separation=100,
    train_speech=data/generated/surrogate/speech/train``, round 2's ``n_components=32,iterations_separation=50``,
    saved in ``model/pretrained/nmf_surrogate.npz``).

    ``dictionary`` loads saved dictionaries (e.g. ``model/pretrained/nmf_surrogate.npz``) instead of
    learning them; their atoms and divergence then come from the file.
    """

    n_components: int = 96
    beta: str = "kl"
    iterations_separation: int = 400
    iterations: int = 100
    max_frames: int = 20000
    seed: int = 0
    train_flute: str = NMF_TRAIN[0]
    train_speech: str = NMF_TRAIN[1]
    dictionary: str = ""

    def dictionary_key(self) -> dict:
        if self.dictionary:
            return {"dictionary": self.dictionary}
        return {k: v for k, v in asdict(self).items() if k not in ("iterations_separation", "dictionary")}


def nmf_scores(point: NMFPoint, data: MixtureSet, models: ModelCache) -> np.ndarray:
    """SI-SDR (B, N) of supervised NMF with ``point``'s dictionaries and separation iterations."""
    model = models.nmf(point)
    model.n_iter_sep = point.iterations_separation
    return score_spectra(data, model.separate(data.mix_stft), models.stft)


def ibm_scores(data: MixtureSet, stft: STFT) -> np.ndarray:
    """SI-SDR (B, N) of the ideal binary mask (oracle)."""
    sources = stft.stft(torch.from_numpy(data.clean).float())
    return score_spectra(data, ibm_estimates(data.mix_stft, sources), stft)


def mixture_scores(data: MixtureSet) -> np.ndarray:
    """SI-SDR (B, N) of the mixture taken as the estimate of every source."""
    return si_sdr_of(data.clean, np.repeat(data.mixture[:, None], data.clean.shape[1], axis=1))


# --------------------------------------------------------------------------- point specs
KINDS = {"mixdvae": MixDVAEPoint, "nmf": NMFPoint, "ibm": None, "mixture": None}


def parse_point(text: str) -> tuple[str, str, MixDVAEPoint | NMFPoint | None]:
    """``LABEL=KIND[,key=value,...]`` -> (label, kind, point); keys are the point's fields.

    Example: ``NMF-broad=nmf,train_flute=data/generated/surrogate_broad_flute/train``.
    """
    label, sep, rest = text.partition("=")
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    if not sep or not label.strip() or not parts or parts[0] not in KINDS:
        raise UserError(f"method {text!r}: expected LABEL=KIND[,key=value,...] with KIND one of {', '.join(KINDS)}")
    kind, cls = parts[0], KINDS[parts[0]]
    if cls is None:
        if len(parts) > 1:
            raise UserError(f"method {text!r}: {kind} takes no settings")
        return label.strip(), kind, None
    types = {f.name: f.type for f in fields(cls)}
    values = {}
    for item in parts[1:]:
        key, eq, value = item.partition("=")
        if not eq or key not in types:
            raise UserError(f"method {text!r}: unknown setting {key!r}; {kind} knows {', '.join(types)}")
        convert = {"float": float, "int": int}.get(str(types[key]), str)
        try:
            values[key] = convert(value)
        except ValueError:
            raise UserError(f"method {text!r}: {key} = {value!r} is not a {types[key]}") from None
    return label.strip(), kind, replace(cls(), **values)


def run_point(kind: str, point, data: MixtureSet, models: ModelCache, seed: int = 0) -> np.ndarray:
    """SI-SDR (B, N) of one method point on ``data``."""
    if kind == "mixdvae":
        return mixdvae_scores(point, data, models, seed=seed)[point.output, point.n_iter]
    if kind == "nmf":
        return nmf_scores(point, data, models)
    if kind == "ibm":
        return ibm_scores(data, models.stft)
    return mixture_scores(data)


# --------------------------------------------------------------------------- statistics
def bootstrap_mean(values: np.ndarray, num_boot: int = 2000, seed: int = 0, level: float = 0.95
                   ) -> tuple[float, float, float]:
    """Mean over mixtures and its percentile-bootstrap interval. Shape: values (B,) -> (mean, low, high)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(num_boot, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(values.mean()), float(low), float(high)


def paired_difference(a: np.ndarray, b: np.ndarray, **kwargs) -> tuple[float, float, float]:
    """Mean of the per-mixture differences ``a - b`` and its bootstrap interval (see :func:`bootstrap_mean`)."""
    return bootstrap_mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), **kwargs)


def fmt_ci(stat: tuple[float, float, float], signed: bool = False) -> str:
    mean, low, high = stat
    sign = "+" if signed else ""
    return f"{mean:{sign}.2f} [{low:{sign}.2f}, {high:{sign}.2f}]"


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]
