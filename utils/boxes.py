"""Box validity, the one definition the loaders, the generators and the VEM share."""

from __future__ import annotations

import numpy as np


def valid_boxes(boxes):
    """True where a box ``(x1, y1, x2, y2)`` is usable: finite, ``x2 > x1`` and ``y2 > y1``.

    A NaN box (a missing detection), a zero-area box and an inverted one are all invalid.

    Args:
        boxes: numpy array or torch tensor (the result has the same type and device).

    Shape:
        boxes: (..., 4) -> (...,) bool
    """
    if hasattr(boxes, "isfinite"):                               # torch
        finite = boxes.isfinite().all(-1)
    else:
        boxes = np.asarray(boxes)
        finite = np.isfinite(boxes).all(-1)
    with np.errstate(invalid="ignore"):
        return finite & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
