"""Two-state linear-Gaussian algebra, elementwise: the Kalman predict / update / Rauch-Tung-Striebel steps of
an independent 2-state system per box coordinate and source, with the first state component observed.

Used by the KF-VEM baseline (:mod:`model.kf_vem`, state (position, velocity)) and by the E-S of a velocity-
anchored DVAE (:class:`model.fast_srnn.FastSRNN`, state (s_t, s_{t-1})). A covariance is the tuple
(P_00, P_01, P_11) of a symmetric 2 x 2 matrix, a transition F the tuple (F_00, F_01, F_10, F_11) of numbers
or tensors; every tensor has the same (any) shape, so the algebra is vectorised over coordinates and sources.
"""

from __future__ import annotations

import torch
from torch import Tensor

Cov = tuple[Tensor, Tensor, Tensor]
CONSTANT_VELOCITY = (1.0, 1.0, 0.0, 1.0)        # F = [[1, 1], [0, 1]] on (position, velocity)
DET_FLOOR = 1e-12                               # relative floor of det(P^pred) in rts_backward


def predict(x0: Tensor, x1: Tensor, cov: Cov, F: tuple, drift: tuple = (0.0, 0.0), Q: tuple = (0.0, 0.0, 0.0)
            ) -> tuple[Tensor, Tensor, Cov]:
    """x <- F x + drift, P <- F P F^T + Q. Returns (x0, x1, cov)."""
    f00, f01, f10, f11 = F
    a, b, c = cov
    r00, r01 = f00 * a + f01 * b, f00 * b + f01 * c          # first row of F P
    r10, r11 = f10 * a + f11 * b, f10 * b + f11 * c          # second row
    return (f00 * x0 + f01 * x1 + drift[0], f10 * x0 + f11 * x1 + drift[1],
            (r00 * f00 + r01 * f01 + Q[0], r00 * f10 + r01 * f11 + Q[1], r10 * f10 + r11 * f11 + Q[2]))


def update(x0: Tensor, x1: Tensor, cov: Cov, prec: Tensor, info: Tensor) -> tuple[Tensor, Tensor, Cov]:
    """Information-form measurement update on the first component (H = [1, 0]).

    Equivalent to adding ``prec`` to the first component's precision and ``info`` to the information vector,
    written in gain form ``K = P H^T prec / (1 + prec P_00)`` so that prec = 0 is exactly no update.
    """
    p00, p01, p11 = cov
    denom = 1.0 + prec * p00
    r, k = (info - prec * x0) / denom, prec / denom
    return x0 + p00 * r, x1 + p01 * r, (p00 - p00 * p00 * k, p01 - p00 * p01 * k, p11 - p01 * p01 * k)


def rts_backward(filt: list, pred: list, transitions: list) -> tuple[list[Tensor], list[Tensor]]:
    """Rauch-Tung-Striebel backward pass: ``G_t = P_t F_{t+1}^T P^pred_{t+1}^-1``,
    ``x^s_t = x_t + G_t (x^s_{t+1} - x^pred_{t+1})``, ``P^s_t = P_t + G_t (P^s_{t+1} - P^pred_{t+1}) G_t^T``.

    Args:
        filt: per frame t the filtered (x0, x1, cov).
        pred: per frame t the one-step prediction (x0, x1, cov) of frame t (entry 0 unused).
        transitions: per frame t the F that took frame t-1 to frame t (entry 0 unused).
    Returns:
        (means, variances) of the first component, lists over frames.
    """
    x0, x1, cov = filt[-1]
    means, variances = [x0], [cov[0]]
    for t in range(len(filt) - 2, -1, -1):
        f0, f1, (a, b, c) = filt[t]
        p0, p1, (d, e, f) = pred[t + 1]
        f00, f01, f10, f11 = transitions[t + 1]
        m00, m01 = a * f00 + b * f01, a * f10 + b * f11          # P_t F^T
        m10, m11 = b * f00 + c * f01, b * f10 + c * f11
        # P^pred is singular when the previous state is known exactly (e.g. an infinitely precise observation): floor
        # its determinant relative to d f, so the gain stays finite (the numerators then cancel to about 0)
        det = torch.maximum(d * f - e * e, DET_FLOOR * d * f).clamp_min(torch.finfo(d.dtype).tiny)
        g00, g01 = (m00 * f - m01 * e) / det, (m01 * d - m00 * e) / det
        g10, g11 = (m10 * f - m11 * e) / det, (m11 * d - m10 * e) / det
        d0, d1 = x0 - p0, x1 - p1
        x0, x1 = f0 + g00 * d0 + g01 * d1, f1 + g10 * d0 + g11 * d1
        u, v, w = cov[0] - d, cov[1] - e, cov[2] - f              # P^s_{t+1} - P^pred_{t+1}
        r0, r1 = g00 * u + g01 * v, g00 * v + g01 * w              # first row of G (.)
        s0, s1 = g10 * u + g11 * v, g10 * v + g11 * w
        cov = (a + r0 * g00 + r1 * g01, b + r0 * g10 + r1 * g11, c + s0 * g10 + s1 * g11)
        means.append(x0)
        variances.append(cov[0])
    return means[::-1], variances[::-1]
