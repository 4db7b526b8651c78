"""Running the MOT VEM faster than the data's frame rate (beyond the paper).

A DVAE learns the motion of one frame step. Data recorded at 1/f of the frame rate it was trained on move
f times as far per frame, which the DVAE has never seen. :func:`run_vem_upsampled` inserts f − 1 frames
without detections between every two data frames, runs the VEM at the training rate (the sources are
estimated at every frame, the missing ones bridged by the dynamics model), and returns the data frames.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from model.vem_mot import Dynamics, VEMResult, VEMSettings, run_vem


def upsample_detections(det: Tensor, det_mask: Tensor | None, factor: int) -> tuple[Tensor, Tensor | None]:
    """(B, T, K, 4) detections -> (B, (T − 1) f + 1, K, 4): data frame t at frame t f, NaN in between
    (missing); the mask (B, T, K) likewise (False in between)."""
    B, T, K, D = det.shape
    out = det.new_full((B, (T - 1) * factor + 1, K, D), float("nan"))
    out[:, ::factor] = det
    if det_mask is None:
        return out, None
    mask = torch.zeros(B, out.shape[1], K, dtype=torch.bool, device=det_mask.device)
    mask[:, ::factor] = det_mask
    return out, mask


def run_vem_upsampled(det: Tensor, det_mask: Tensor | None, init: Tensor, dynamics: Dynamics,
                      settings: VEMSettings, image_size: Tensor | None = None, factor: int = 1) -> VEMResult:
    """:func:`model.vem_mot.run_vem` at ``factor`` times the data's frame rate; results at the data frames.

    The initialisation windows keep their length in data frames (``init_subseq_len`` x factor frames).
    Shapes as :func:`run_vem`; ``eta``, ``tracks``, ``var`` and ``iter_tracks`` come back at T frames.
    """
    if factor < 1:
        raise ValueError(f"upsample factor must be >= 1, got {factor}")
    if factor == 1:
        return run_vem(det, det_mask, init, dynamics, settings, image_size)
    det_up, mask_up = upsample_detections(det, det_mask, factor)
    settings = replace(settings, init_subseq_len=settings.init_subseq_len * factor)
    result = run_vem(det_up, mask_up, init, dynamics, settings, image_size)
    every = slice(None, None, factor)
    return replace(result, tracks=result.tracks[:, every], var=result.var[:, every], eta=result.eta[:, every],
                   iter_tracks=None if result.iter_tracks is None else result.iter_tracks[:, :, every])
