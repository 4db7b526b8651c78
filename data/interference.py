"""Interference in the input of an audio DVAE's pre-training (``[Training] interference_dir``; not in the paper).

In the separation VEM (docs/method.md §6) the recurrence (4.1) and the encoder (4.4) of source n's DVAE are fed the
power of the current estimate of source n, which still holds some of the other sources; teacher-forced
pre-training only ever showed them the clean source. As the tracking DVAEs are trained as denoisers (README,
Tracking, round 5), an audio DVAE can be fed ``x_in = x + g * i``: the clean power spectrogram x plus the power
spectrogram i of a random sequence of another source (e.g. flute for the speech DVAE), and scored against x.
The gain puts the interference ``snr`` dB below the source (mean powers of the sequence), with snr drawn
uniformly in a range per sequence; each sequence is corrupted with probability ``prob``. Power spectra add
here as they do on average for independent sources.

Shapes: x (B, T, F) power; pool (P, T, F) power.
"""

from __future__ import annotations

import torch
from torch import Tensor

SILENT = 1e-20   # mean power below which a sequence is left clean


def add_interference(x: Tensor, pool: Tensor, snr_db: tuple[float, float], prob: float,
                     gen: torch.Generator | None = None) -> Tensor:
    """``x + g * i`` for a random pool sequence i per sequence of x, at a source-to-interference ratio drawn in
    ``snr_db`` (dB), on a share ``prob`` of the sequences (the others are returned unchanged)."""
    B = x.shape[0]
    # torch.randint is not among the draws utils.distributed maps to the global batch: under torchrun the picks
    # differ from a one-process run's (the SNRs and coin flips do not); kept so the shipped checkpoint reruns as is
    pick = torch.randint(pool.shape[0], (B,), generator=gen)
    snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(B, generator=gen)
    use = torch.rand(B, generator=gen) < prob
    inter = pool[pick].to(x.device)
    if inter.shape[1] != x.shape[1]:
        raise ValueError(f"interference sequences have {inter.shape[1]} frames, the batch {x.shape[1]}")
    px, pi = x.mean(dim=(1, 2)), inter.mean(dim=(1, 2))
    ok = use & (px > SILENT) & (pi > SILENT)
    gain = torch.where(ok, px / pi.clamp_min(SILENT) * 10.0 ** (-snr / 10.0), 0.0).to(x.dtype)
    return x + gain[:, None, None].to(x.device) * inter
