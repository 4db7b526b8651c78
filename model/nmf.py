"""Supervised NMF baseline for SC-ASS (§7).

Training: one dictionary ``W_n`` (F, K) per source type, learned by multiplicative updates
(MU) on frames of single-source training data, the same data as the DVAEs. Separation: the
mixture spectrogram is approximated by ``sum_n H_n W_n^T`` with every ``W_n`` fixed; the
activations ``H_n`` are estimated by MU, each source gets the model ``V_n = H_n W_n^T`` and
the Wiener-like mask ``V_n / sum_m V_m`` applied to the complex mixture STFT.

Spectrogram domain. All inputs are power spectrograms ``|S|^2`` (what the DVAE datasets
hold) or complex STFTs; internally the divergence picks its domain:

- ``beta="kl"`` (default) works on **magnitudes** ``|S|``: KL-NMF on magnitude spectrograms
  is the classic supervised-separation setting (Smaragdis et al. 2007; Virtanen 2007), where
  magnitudes of the sources are taken as approximately additive, and it separates better
  than KL on power, whose large dynamic range lets a few loud bins dominate the fit;
- ``beta="is"`` works on **power** ``|S|^2``: IS-NMF on power is maximum likelihood for the
  Gaussian composite model ``S_n ~ N_c(0, V_n)`` (Févotte et al. 2009), so the mask
  ``V_n / sum V`` is then exactly the Wiener filter (the same model as the DVAE's IS head).

Defaults: K = 32 components per source, 100 MU iterations for training, 50 for separation.
Updates follow Févotte & Idier (2011) with the exponent ``gamma = 1`` for KL and ``1/2``
for IS, the values for which each update provably does not increase the divergence.
Spectrogram values are floored at ``EPS`` so that the IS divergence and the ratios stay
finite on silent bins.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from utils.errors import UserError
from utils.output_dir import atomic_write

EPS = 1e-10
# Spectrogram exponent p (the model fits |S|^p) for each divergence: KL = beta 1, IS = beta 0.
_BETAS = {"kl": 1.0, "is": 2.0}


def beta_divergence(v: torch.Tensor, v_hat: torch.Tensor, beta: str) -> torch.Tensor:
    """Beta-divergence ``D(v | v_hat)`` summed over the last two dims (§7).

    KL: ``v log(v / v_hat) - v + v_hat``; IS: ``v / v_hat - log(v / v_hat) - 1``.

    Shape:
        v, v_hat: (..., T, F) non-negative -> (...).
    """
    _check_beta(beta)
    v, v_hat = v.clamp_min(EPS), v_hat.clamp_min(EPS)
    ratio = v / v_hat
    d = v * torch.log(ratio) - v + v_hat if beta == "kl" else ratio - torch.log(ratio) - 1
    return d.sum(dim=(-2, -1))


def mu_update(v: torch.Tensor, w: torch.Tensor, h: torch.Tensor, beta: str,
              update_w: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One multiplicative-update step of beta-NMF ``v ~ h w^T`` (§7; Févotte & Idier 2011).

    ``h <- h * [(v * v_hat^(b-2)) w / (v_hat^(b-1) w)]^gamma``, then the same for ``w`` (if
    ``update_w``), whose columns are renormalised to sum to 1 with ``h`` rescaled so that
    ``h w^T`` is unchanged. Neither update increases the divergence.

    Args:
        v: spectrogram to approximate, in the domain of ``beta`` (see the module docstring).
        w: dictionary.
        h: activations.
        beta: "kl" or "is".
        update_w: also update the dictionary (training) or keep it fixed (separation).

    Shape:
        v: (..., T, F); w: (F, K); h: (..., T, K). With ``update_w``, v and h have no batch dims.

    Returns:
        ``(w, h)`` updated.
    """
    _check_beta(beta)
    v = v.clamp_min(EPS)
    h = h * _mu_factor(v, (h @ w.T).clamp_min(EPS), w, beta)
    if update_w:
        v_hat = (h @ w.T).clamp_min(EPS)
        w = w * _mu_factor(v.T, v_hat.T, h, beta)
        scale = w.sum(dim=0).clamp_min(EPS)
        w, h = w / scale, h * scale
    return w, h


def _mu_factor(v: torch.Tensor, v_hat: torch.Tensor, other: torch.Tensor, beta: str) -> torch.Tensor:
    """``[(v * v_hat^(b-2)) @ other / (v_hat^(b-1) @ other)]^gamma``, written out per divergence.

    For KL (b = 1) the denominator is a column sum of ``other``; powers are spelled as
    divisions and a square root, which is several times faster than ``torch.pow``.
    """
    if beta == "kl":
        return (v / v_hat) @ other / other.sum(dim=-2, keepdim=True).clamp_min(EPS)
    inv = 1 / v_hat
    return ((v * inv * inv) @ other / (inv @ other)).sqrt()


def learn_dictionary(power_frames, n_components: int = 32, beta: str = "kl", n_iter: int = 100,
                     seed: int = 0) -> torch.Tensor:
    """Learn one source's NMF dictionary from single-source power frames (§7).

    Args:
        power_frames: power spectrogram frames ``|S|^2`` of one source type.
        n_components: number of dictionary atoms K.
        beta: "kl" (fit on magnitudes) or "is" (fit on power), see the module docstring.
        n_iter: number of MU iterations.
        seed: seed of the random non-negative initialisation.

    Shape:
        power_frames: (T, F) -> W: (F, K), columns summing to 1.
    """
    _check_beta(beta)
    p = _BETAS[beta]
    v = torch.as_tensor(power_frames).clamp_min(0) ** (p / 2)
    gen = torch.Generator().manual_seed(seed)
    num_frames, num_freqs = v.shape
    w = torch.rand(num_freqs, n_components, generator=gen, dtype=v.dtype) + 0.1
    w = w / w.sum(dim=0)
    h = torch.rand(num_frames, n_components, generator=gen, dtype=v.dtype) + 0.1
    h = h * v.mean() * num_freqs / n_components   # so that h w^T starts at the data's scale
    for _ in range(n_iter):
        w, h = mu_update(v, w, h, beta)
    return w


def estimate_activations(v: torch.Tensor, w: torch.Tensor, beta: str, n_iter: int = 50) -> torch.Tensor:
    """Activations of ``v ~ h w^T`` with the dictionary ``w`` fixed (§7), batched.

    Initialised deterministically so that every atom contributes equally to each frame's
    total and the model's frame total matches the data's: ``h_tk = sum_f v_tf / (K sum_f w_fk)``
    (hence the result does not depend on the scale of the atoms).

    Shape:
        v: (B, T, F) in the domain of ``beta``; w: (F, K) -> h: (B, T, K).
    """
    h = v.sum(dim=-1, keepdim=True) / (w.shape[1] * w.sum(dim=0).clamp_min(EPS))
    for _ in range(n_iter):
        _, h = mu_update(v, w, h, beta, update_w=False)
    return h


def separate(mix_stft, dictionaries: Sequence[torch.Tensor], beta: str = "kl",
             n_iter: int = 50) -> torch.Tensor:
    """Separate mixtures with fixed per-source dictionaries and Wiener-like masks (§7).

    ``H = [H_1 ... H_N]`` is fitted to the mixture spectrogram with ``W = [W_1 ... W_N]``
    fixed, ``V_n = H_n W_n^T``, ``S_n = V_n / (sum_m V_m + EPS) * X``.

    Args:
        mix_stft: complex mixture STFT.
        dictionaries: one (F, K_n) dictionary per source, in output order.
        beta: "kl" or "is"; must match the divergence the dictionaries were learned with.
        n_iter: MU iterations for the activations.

    Shape:
        mix_stft: (B, T, F) complex -> (B, N, T, F) complex.
    """
    _check_beta(beta)
    p = _BETAS[beta]
    x = torch.as_tensor(mix_stft)
    num_freqs = x.shape[-1]
    bad = [n + 1 for n, w in enumerate(dictionaries) if w.shape[0] != num_freqs]
    if bad:
        raise UserError(f"NMF dictionaries of sources {bad} have {dictionaries[bad[0] - 1].shape[0]} "
                        f"frequency bins but the mixture STFT has {num_freqs}; retrain the NMF "
                        "baseline with the current [STFT] settings")
    w = torch.cat([torch.as_tensor(w_n, dtype=x.real.dtype) for w_n in dictionaries], dim=1)
    owner = torch.repeat_interleave(torch.arange(len(dictionaries)),
                                    torch.tensor([w_n.shape[1] for w_n in dictionaries]))
    h = estimate_activations(x.abs() ** p, w, beta, n_iter)
    # V_n = H_n W_n^T for all n at once: zero the activations of the other sources' atoms.
    h_per_source = h.unsqueeze(1) * (owner == torch.arange(len(dictionaries)).unsqueeze(1)).unsqueeze(1)
    v = h_per_source @ w.T
    masks = v / (v.sum(dim=1, keepdim=True) + EPS)
    return masks * x.unsqueeze(1)


class SupervisedNMF:
    """Supervised NMF baseline: one dictionary per source type, Wiener-like separation (§7).

    Args:
        n_components: atoms per source (K).
        beta: "kl" (magnitude domain) or "is" (power domain).
        n_iter_train: MU iterations to learn each dictionary.
        n_iter_sep: MU iterations for the activations at separation time.
        max_frames: at most this many training frames per source, drawn at random (seeded);
            K = 32 atoms do not need more (10000 frames = 160 s of audio at hop 256, 16 kHz),
            and a full corpus would neither fit in memory nor train in reasonable time.
        seed: seed for the frame subset and the initialisation.
    """

    def __init__(self, n_components: int = 32, beta: str = "kl", n_iter_train: int = 100,
                 n_iter_sep: int = 50, max_frames: int = 10000, seed: int = 0):
        _check_beta(beta)
        self.n_components = n_components
        self.beta = beta
        self.n_iter_train = n_iter_train
        self.n_iter_sep = n_iter_sep
        self.max_frames = max_frames
        self.seed = seed
        self.dictionaries: list[torch.Tensor] = []

    def fit(self, power_spectrograms: Sequence) -> SupervisedNMF:
        """Learn one dictionary per source from its training power spectrograms.

        Args:
            power_spectrograms: per source, its training power spectrogram(s) ``|S|^2``.

        Shape:
            each entry: (..., T, F), leading dims (e.g. sequences) are flattened into frames.
        """
        gen = torch.Generator().manual_seed(self.seed)
        self.dictionaries = []
        for n, spec in enumerate(power_spectrograms):
            frames = torch.as_tensor(spec)
            frames = frames.reshape(-1, frames.shape[-1])
            if frames.shape[0] > self.max_frames:
                frames = frames[torch.randperm(frames.shape[0], generator=gen)[:self.max_frames]]
            self.dictionaries.append(learn_dictionary(frames, self.n_components, self.beta,
                                                      self.n_iter_train, self.seed + n))
        return self

    def separate(self, mix_stft) -> torch.Tensor:
        """Source STFT estimates, see :func:`separate`. Shape: (B, T, F) complex -> (B, N, T, F)."""
        if not self.dictionaries:
            raise UserError("the NMF baseline has no dictionaries: fit it or load a saved one first")
        return separate(mix_stft, self.dictionaries, self.beta, self.n_iter_sep)

    def save(self, path: str | Path) -> Path:
        """Write the dictionaries and settings to an ``.npz`` file (atomically); returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"w{n + 1}": w.cpu().numpy() for n, w in enumerate(self.dictionaries)}
        return atomic_write(path, lambda tmp: np.savez(
            tmp, beta=self.beta, n_components=self.n_components, n_iter_train=self.n_iter_train,
            n_iter_sep=self.n_iter_sep, max_frames=self.max_frames, seed=self.seed, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> SupervisedNMF:
        """Rebuild a fitted model written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"NMF baseline file {path} does not exist; fit the baseline first")
        with np.load(path) as data:
            model = cls(n_components=int(data["n_components"]), beta=str(data["beta"]),
                        n_iter_train=int(data["n_iter_train"]), n_iter_sep=int(data["n_iter_sep"]),
                        max_frames=int(data["max_frames"]), seed=int(data["seed"]))
            count = sum(1 for key in data.files if key.startswith("w"))
            model.dictionaries = [torch.from_numpy(data[f"w{n + 1}"]) for n in range(count)]
        return model


def _check_beta(beta: str) -> None:
    if beta not in _BETAS:
        raise UserError(f"NMF beta must be one of {list(_BETAS)}, got {beta!r}")


SETTING_KEYS = ("n_components", "beta", "iterations", "iterations_separation", "max_frames")


def cached_nmf(nmf: dict, seed: int, stft, cache_root: Path, where: str,
               log: Callable[[str], object] = print) -> SupervisedNMF:
    """The supervised NMF baseline of the ``[NMF]`` section, learned once and cached on disk.

    The cache (``cache_file``, default ``cache_root/nmf_<hash>.npz``, plus a ``.json`` sidecar) is
    keyed on the NMF settings, the seed, the STFT and the training files (names and content hashes);
    any change refits, with a notice. When the training directories are absent, a cache learned with
    the same settings is used as it is (e.g. dictionaries shipped next to the checkpoints).

    Args:
        nmf: the typed ``[NMF]`` section (``train_dir_s1``, ``train_dir_s2``, ``cache_file``, :data:`SETTING_KEYS`).
        seed: random seed of the frame subsampling and the initialisation.
        stft: a :class:`utils.stft.STFT`, the same as the DVAEs'.
        cache_root: folder of the default cache file.
        where: the INI file, for error messages.
        log: where the notices go.

    Raises:
        UserError: a training directory is absent and no matching cache exists, or holds no audio.
    """
    from data.audio_dataset import SpectrogramDataset
    from utils.audio_io import list_audio_files

    keys = ("train_dir_s1", "train_dir_s2")
    dirs = [Path(nmf[key]) for key in keys]
    settings = {"nmf": {k: nmf[k] for k in SETTING_KEYS}, "seed": seed,
                "stft": {k: v for k, v in stft.as_dict().items() if k != "trim"}}
    settings_digest = _digest(settings)
    cache = Path(nmf["cache_file"]) if str(nmf["cache_file"]) else Path(cache_root) / f"nmf_{settings_digest}.npz"
    if cache.suffix != ".npz":
        cache = cache.with_name(cache.name + ".npz")
    meta = _read_json(cache.with_suffix(".json")) if cache.is_file() else {}
    missing = [(key, d) for key, d in zip(keys, dirs) if not d.is_dir()]
    if missing:
        key, d = missing[0]
        if meta.get("settings_digest") == settings_digest:
            log(f"NMF dictionaries: {cache} (cached; [NMF] {key} {str(d)!r} is absent, so it is not refitted)")
            return SupervisedNMF.load(cache)
        raise UserError(f"{where} [NMF] {key}: directory {str(d)!r} does not exist and no dictionary cache "
                        f"learned with these settings is at {str(cache)!r} (or remove nmf from [Eval] baselines)")
    files = [list_audio_files(d) for d in dirs]
    for key, d, found in zip(keys, dirs, files):
        if not found:
            raise UserError(f"{where} [NMF] {key}: no .wav/.flac files in {str(d)!r}")
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
    model = SupervisedNMF(n_components=nmf["n_components"], beta=nmf["beta"], n_iter_train=nmf["iterations"],
                          n_iter_sep=nmf["iterations_separation"], max_frames=nmf["max_frames"], seed=seed).fit(frames)
    model.save(cache)
    sidecar = {"digest": digest, "settings_digest": settings_digest, "train_dirs": [str(d) for d in dirs],
               **fingerprint}
    atomic_write(cache.with_suffix(".json"), json.dumps(sidecar, indent=1) + "\n")
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
