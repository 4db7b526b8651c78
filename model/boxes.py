"""Boxes and coordinates of the MOT VEM (§5): normalisation, valid detections, box sizes."""

from __future__ import annotations

import torch
from torch import Tensor

from utils.boxes import valid_boxes

MIN_STD = 1e-4        # floor of the observation std (normalised units, ~0.2 px at 1920 px)


def box_scale(image_size: Tensor, normalize: str, normalize_range: tuple[float, float]) -> Tensor:
    """Per-sample factor from normalised coordinates to pixels (§5).

    Shape: image_size (B, 2) (width, height) -> (B, 4) = (W, H, W, H).
    """
    if normalize == "image_size":
        wh = image_size.to(torch.float32)
    elif normalize == "fixed":
        wh = torch.tensor(normalize_range, dtype=torch.float32).expand(image_size.shape[0], 2)
    else:
        raise ValueError(f"normalize must be 'fixed' or 'image_size', got {normalize!r}")
    return torch.cat([wh, wh], dim=-1)


def valid_detections(det: Tensor, det_mask: Tensor | None = None, image_size: Tensor | None = None) -> Tensor:
    """Detections the VEM uses: finite, x2 > x1 and y2 > y1, in ``det_mask``, and (given a positive
    ``image_size``) not far outside the image: every coordinate within one image size of it.

    Zero-area and inverted boxes are skipped (treated as missing): their Phi (5.1) would be zero. An
    absurd box (a detector glitch at 1e9 px) would drag its source's whole track along: also skipped.
    Shape: det (B, ..., 4), det_mask (B, ...), image_size (B, 2) (width, height) -> (B, ...) bool.
    """
    ok = valid_boxes(det)
    if image_size is not None:
        wh = image_size.to(det.device, det.dtype).reshape(image_size.shape[0], *[1] * (det.dim() - 2), 2)
        wh = torch.cat([wh, wh], -1)
        far = ((det < -wh) | (det > 2 * wh)).any(-1) & (wh > 0).all(-1)
        ok = ok & ~far
    return ok if det_mask is None else ok & det_mask.bool()


def box_sizes(box: Tensor, dim: int) -> Tensor:
    """The size each coordinate scales with: (x1, y1, x2, y2) -> (w, h, w, h) along ``dim`` (of length 4)."""
    wh = box.narrow(dim, 2, 2) - box.narrow(dim, 0, 2)
    return torch.cat([wh, wh], dim=dim)
