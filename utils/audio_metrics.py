"""Source-separation metrics for SC-ASS (§8.2): one entry point, one flat dict per mixture.

:func:`get_metrics` scores an estimate of every source against its reference and, as the
``input_`` baseline, the mixture itself against every reference. Keys are
``s{n}_{metric}`` (estimate) and ``input_s{n}_{metric}`` (mixture), n starting at 1.

Metrics:
    rmse    RMSE of ``alpha * est - ref`` with the optimal scale ``alpha = <est, ref> / <est, est>``.
    si_sdr  scale-invariant SDR in dB (both signals made zero-mean).
    pesq    wide-band PESQ (``pesq`` package, mode 'wb'; signals resampled to 16 kHz if needed).
    estoi   extended STOI (``pystoi``, ``extended=True``).
    sdr, sir, sar  BSS-eval v3 (``mir_eval.separation.bss_eval_sources``) over all sources
            jointly, in the given source order (no permutation search: source n is a known
            instrument, so a swapped estimate must score as swapped).

The mixture's (``input_``) scores depend only on the mixture and the references, so they are computed
once per item and reused when the same item is scored for another method (a small cache keyed by the
signals' bytes): BSS-eval alone takes about 0.18 s per call.

A metric that is undefined or fails for one item (silent reference, silent estimate, PESQ
"no utterances detected", signal too short...) is recorded as NaN and reported with
``warnings.warn("<metric> failed for <item> source <n>: <reason>")``; it never raises and is
never replaced by zero. RMSE stays defined for silent signals and is always reported.

:func:`score_items` scores many items, serially or in worker processes (``workers``, INI ``[Eval]
metric_workers``): every item is scored the same way wherever it runs, and the rows come back in item order.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from utils.errors import UserError
from utils.workers import process_pool

ALL_METRICS = ("rmse", "si_sdr", "pesq", "estoi", "sdr", "sir", "sar")
_BSS_METRICS = ("sdr", "sir", "sar")
_PESQ_FS = 16000
_NON_FINITE = "non-finite samples"
# SI-SDR is clipped to +-10*log10(1 / _SI_SDR_FLOOR) = +-200 dB so that a perfect (or an exactly
# orthogonal) estimate stays finite and means over items stay usable.
_SI_SDR_FLOOR = 1e-20
_INPUT_CACHE: OrderedDict[tuple, dict] = OrderedDict()   # (signals digest, metrics, fs) -> input_ scores
_INPUT_CACHE_SIZE = 256


class _MetricUndefined(Exception):
    """A metric has no meaningful value for this item (e.g. silent reference)."""


def get_metrics(mix, clean, estimate, fs: int, metrics: Iterable[str] = ALL_METRICS,
                item: str = "") -> dict[str, float]:
    """Score estimated sources and the unprocessed mixture against the references (§8.2).

    Args:
        mix: mixture waveform.
        clean: reference source waveforms, source n in row n-1.
        estimate: estimated source waveforms, same order as ``clean``.
        fs: sampling rate of all signals, in Hz.
        metrics: names among :data:`ALL_METRICS`.
        item: name of the mixture, used in warnings.

    Shape:
        mix: (L,); clean, estimate: (N, L).

    Returns:
        Flat dict with, for each source n = 1..N and each metric m,
        ``input_s{n}_{m}`` (the mixture's value) followed by ``s{n}_{m}`` (the estimate's).
        Failed or undefined values are NaN (with a warning).
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise UserError(f"unknown audio metric(s) {unknown}; expected names among {list(ALL_METRICS)}")
    mix = np.asarray(mix, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if mix.ndim != 1 or clean.ndim != 2 or estimate.shape != clean.shape or clean.shape[1] != mix.shape[0]:
        raise ValueError(f"get_metrics expects mix (L,), clean and estimate (N, L); got {mix.shape}, "
                         f"{clean.shape}, {estimate.shape}")

    num_src = clean.shape[0]
    candidates = {"input_": np.broadcast_to(mix, clean.shape), "": estimate}
    values: dict[tuple[str, str], np.ndarray] = {}  # (prefix, metric) -> (N,)
    key = (hashlib.sha1(mix.tobytes() + clean.tobytes()).hexdigest(), clean.shape, metrics, fs)
    cached = _INPUT_CACHE.get(key)
    if cached is not None:
        values.update(cached)
    for prefix, est in candidates.items():
        if prefix == "input_" and cached is not None:
            continue
        problems = [_problem(ref, e) for ref, e in zip(clean, est)]
        for metric in metrics:
            if metric in _BSS_METRICS:
                continue
            # RMSE stays defined for silent signals; only non-finite samples stop it.
            scores = np.empty(num_src)
            for n in range(num_src):
                problem = problems[n] if metric != "rmse" or problems[n] == _NON_FINITE else None
                scores[n] = _guarded(prefix + metric, item, n + 1, problem, _PER_SOURCE[metric],
                                     clean[n], est[n], fs)
            values[prefix, metric] = scores
        bss = [m for m in metrics if m in _BSS_METRICS]
        if bss:
            values.update({(prefix, m): v for m, v in zip(bss, _bss_eval(clean, est, bss, prefix, item))})
    if cached is None:
        _INPUT_CACHE[key] = {k: v for k, v in values.items() if k[0] == "input_"}
        while len(_INPUT_CACHE) > _INPUT_CACHE_SIZE:
            _INPUT_CACHE.popitem(last=False)

    return {f"{prefix}s{n + 1}_{metric}": float(values[prefix, metric][n])
            for n in range(num_src) for metric in metrics for prefix in candidates}


def score_methods(mix, clean, estimates: Mapping[str, np.ndarray], fs: int, metrics: Iterable[str],
                  item: str = "") -> tuple[dict[str, dict[str, float]], list[str]]:
    """:func:`get_metrics` with :func:`improvements` of every method's estimate on one item.

    Shape: mix (L,); clean (N, L); estimates[method] (N, L).

    Returns:
        ``{method: row}`` in the order of ``estimates``, and the warnings raised while scoring (their
        messages, each once, in order) instead of warning.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = {m: improvements(get_metrics(mix, clean, est, fs, metrics, item=item)) for m, est in estimates.items()}
    return rows, list(dict.fromkeys(str(w.message) for w in caught))


class MetricPool:
    """Scores items with :func:`score_methods`, in ``workers`` processes (1 = in this process).

    The processes are started on the first call that has more than one item and reused until :meth:`close`
    (or the end of a ``with`` block); see :func:`utils.workers.process_pool`.
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> MetricPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def score_items(self, items: Sequence[tuple], fs: int, metrics: Iterable[str]
                    ) -> list[tuple[dict[str, dict[str, float]], list[str]]]:
        """:func:`score_methods` of every ``(mix, clean, estimates, item_name)`` in ``items``, in item order."""
        metrics = tuple(metrics)
        jobs = [(mix, clean, estimates, fs, metrics, name) for mix, clean, estimates, name in items]
        if self.workers == 1 or len(jobs) < 2:
            return [_score_job(job) for job in jobs]
        if self._pool is None:
            self._pool = process_pool(self.workers)
        chunk = max(1, len(jobs) // (4 * self.workers))      # a few chunks per worker: balanced, little overhead
        return list(self._pool.map(_score_job, jobs, chunksize=chunk))


def score_items(items: Sequence[tuple], fs: int, metrics: Iterable[str], workers: int = 1
                ) -> list[tuple[dict[str, dict[str, float]], list[str]]]:
    """:func:`score_methods` of every ``(mix, clean, estimates, item_name)`` in ``items``, in item order, with
    ``workers`` processes (started and stopped here; use :class:`MetricPool` to keep them for many calls)."""
    with MetricPool(workers) as pool:
        return pool.score_items(items, fs, metrics)


def _score_job(job: tuple) -> tuple[dict[str, dict[str, float]], list[str]]:
    mix, clean, estimates, fs, metrics, name = job
    return score_methods(mix, clean, estimates, fs, metrics, item=name)


def improvements(row: Mapping[str, float]) -> dict[str, float]:
    """Add ``<key>_i = row[key] - row['input_' + key]`` for every key that has an input value.

    Args:
        row: metrics dict as returned by :func:`get_metrics`.

    Returns:
        A new dict: ``row`` plus the improvements (NaN wherever either side is NaN).
    """
    gains = {f"{key}_i": value - row[f"input_{key}"] for key, value in row.items()
             if not key.startswith("input_") and f"input_{key}" in row}
    return {**row, **gains}


def mixture_row(row: Mapping[str, float]) -> dict[str, float]:
    """The "Mixture" method's row: the mixture scored as its own estimate, reusing ``input_`` values.

    Args:
        row: metrics dict as returned by :func:`get_metrics` for any method on the same item.

    Returns:
        ``{key: v, 'input_' + key: v}`` for every ``input_`` entry (improvements are then 0).
    """
    inputs = {key: value for key, value in row.items() if key.startswith("input_")}
    return {**inputs, **{key[len("input_"):]: value for key, value in inputs.items()}}


def scaled_rmse(ref: np.ndarray, est: np.ndarray) -> float:
    """RMSE after optimal scaling: ``rms(alpha * est - ref)`` with ``alpha = <est, ref> / <est, est>``.

    A silent estimate gets ``alpha = 0`` (the RMS of the reference).

    Shape:
        ref, est: (L,).
    """
    energy = est @ est
    alpha = (est @ ref) / energy if energy > 0 else 0.0
    return float(np.sqrt(np.mean((alpha * est - ref) ** 2)))


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019), clipped to [-200, 200] dB.

    ``target = (<est, ref> / <ref, ref>) ref``, ``SI-SDR = 10 log10(|target|^2 / |est - target|^2)``,
    on zero-mean signals. NaN when the reference or the estimate is constant (undefined).

    Shape:
        ref, est: (L,).
    """
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = ref @ ref
    if ref_energy == 0 or not np.any(est):
        return math.nan
    target = (est @ ref) / ref_energy * ref
    target_energy = target @ target
    noise_energy = (est - target) @ (est - target)
    floor = _SI_SDR_FLOOR
    ratio = max(target_energy, floor * noise_energy) / max(noise_energy, floor * target_energy)
    return float(10 * np.log10(ratio))


def _pesq_wb(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    from pesq import pesq

    if fs != _PESQ_FS:
        ref, est = _resample(ref, fs, _PESQ_FS), _resample(est, fs, _PESQ_FS)
    return float(pesq(_PESQ_FS, ref, est, "wb"))


def _estoi(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    from pystoi import stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = stoi(ref, est, fs, extended=True)
    # pystoi signals "too few non-silent frames" by a warning and the placeholder 1e-5.
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            raise _MetricUndefined("too few non-silent frames for ESTOI")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return float(value)


_PER_SOURCE: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "rmse": lambda ref, est, fs: scaled_rmse(ref, est),
    "si_sdr": lambda ref, est, fs: si_sdr(ref, est),
    "pesq": _pesq_wb,
    "estoi": _estoi,
}


def _bss_eval(clean: np.ndarray, est: np.ndarray, names: list[str], prefix: str,
              item: str) -> list[np.ndarray]:
    """SDR/SIR/SAR of all sources jointly (BSS-eval v3), in the given order; NaN if undefined."""
    from mir_eval.separation import bss_eval_sources

    num_src = clean.shape[0]
    label = prefix + "/".join(names)
    problems = [_problem(ref, e) for ref, e in zip(clean, est)]
    reason = next((f"source {n + 1} has {p} (BSS-eval is joint over sources)"
                   for n, p in enumerate(problems) if p), None)
    if reason is None:
        try:
            with warnings.catch_warnings():
                # mir_eval 0.8 deprecates bss_eval_sources (removal planned in 0.9).
                warnings.simplefilter("ignore", FutureWarning)
                sdr, sir, sar, _ = bss_eval_sources(clean, np.ascontiguousarray(est),
                                                    compute_permutation=False)
            scores = dict(zip(_BSS_METRICS, (sdr, sir, sar)))
            values = [np.asarray(scores[m], dtype=np.float64) for m in names]
            if all(np.isfinite(v).all() for v in values):
                return values
            reason = "non-finite BSS-eval result"
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
            reason = str(err)
    for n in range(num_src):
        warnings.warn(f"{label} failed for {item} source {n + 1}: {problems[n] or reason}", stacklevel=3)
    return [np.full(num_src, math.nan) for _ in names]


def _problem(ref: np.ndarray, est: np.ndarray) -> str | None:
    """Why reference-based metrics are undefined for this pair, or None if they are defined."""
    if not (np.isfinite(ref).all() and np.isfinite(est).all()):
        return _NON_FINITE
    if not np.any(ref):
        return "silent reference"
    if not np.any(est):
        return "silent estimate"
    return None


def _guarded(metric: str, item: str, source: int, problem: str | None,
             compute: Callable[[np.ndarray, np.ndarray, int], float], ref: np.ndarray, est: np.ndarray,
             fs: int) -> float:
    """``compute(ref, est, fs)``, or NaN with a warning when it is undefined or fails (never raises)."""
    from pesq import PesqError

    reason = problem
    if reason is None:
        try:
            value = compute(ref, est, fs)
            if not math.isnan(value):
                return value
            reason = "undefined value"
        except _MetricUndefined as err:
            reason = str(err)
        except (PesqError, ValueError, ZeroDivisionError, FloatingPointError) as err:
            reason = f"{type(err).__name__}: {_text(err)}"
    warnings.warn(f"{metric} failed for {item} source {source}: {reason}", stacklevel=3)
    return math.nan


def _text(err: Exception) -> str:
    msg = err.args[0] if err.args else ""
    return msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)


def _resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = math.gcd(fs_in, fs_out)
    return resample_poly(x, fs_out // g, fs_in // g)
