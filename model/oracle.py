"""Oracle upper bound for SC-ASS: the ideal binary mask (§7).

Each time-frequency bin of the mixture is given entirely to the source that is loudest in
it, as known from the true sources. Evaluated like any other estimate (§8.2).
"""

from __future__ import annotations

import torch


def ideal_binary_mask(sources_stft: torch.Tensor) -> torch.Tensor:
    """One-hot masks selecting, per bin, the source with the largest ``|S_n|^2`` (§7).

    Ties go to the lowest source index, so the masks always sum to 1 over sources.

    Shape:
        sources_stft: (B, N, T, F) complex -> masks (B, N, T, F) real, values in {0, 1}.
    """
    power = sources_stft.abs() ** 2
    winner = power.argmax(dim=1, keepdim=True)
    return torch.zeros_like(power).scatter_(1, winner, 1.0)


def ibm_estimates(mix_stft: torch.Tensor, sources_stft: torch.Tensor) -> torch.Tensor:
    """Ideal-binary-mask source estimates ``mask_n * X`` (§7).

    Shape:
        mix_stft: (B, T, F) complex; sources_stft: (B, N, T, F) complex -> (B, N, T, F) complex.
    """
    return ideal_binary_mask(sources_stft) * mix_stft.unsqueeze(1)
