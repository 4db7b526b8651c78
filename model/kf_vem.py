"""KF-VEM baseline (docs/method.md §7): the MOT VEM of §5 with a constant-velocity Kalman smoother (or filter) as E-S.

Same E-W (5.2), observation model (5.1) and initialisation (5.7) as MixDVAE; no E-Z. Each box
coordinate of each source is an independent linear-Gaussian system with state (position, velocity):

    s_t = F s_{t-1} + u_t,   F = [[1, 1], [0, 1]],   u_t ~ N(0, q^2 [[1/4, 1/2], [1/2, 1]])

(the discrete white-noise-acceleration model: a random velocity change of std q per frame), with
``q = accel_std_ratio x size`` where size is the start box's width (x coordinates) or height (y
coordinates). Frame 1 has position prior N(start, start_var) (the pinned start of §5.4) and velocity
prior N(0, (init_vel_std_ratio x size)^2). The eta-weighted detections enter in information form:
a frame contributes precision ``prec = sum_k eta Phi^-1`` and information ``info = sum_k eta Phi^-1 o``
on the position (nothing when prec = 0). A forward Kalman filter and a backward Rauch-Tung-Striebel
pass give the smoothed posterior. Everything is vectorised over (batch x sources, 4 coordinates);
the loops are over time. Sequences are (T, D, M) as in :mod:`model.vem_mot`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.vem_mot import MIN_STD, box_sizes


def kalman_update(pos: Tensor, vel: Tensor, cov: tuple[Tensor, Tensor, Tensor], prec: Tensor, info: Tensor
                  ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Information-form measurement update on the position (H = [1, 0]), elementwise.

    Equivalent to adding ``prec`` to the position precision and ``info`` to the information vector, written
    in gain form ``K = P H^T prec / (1 + prec P_00)`` so that prec = 0 is exactly no update.

    Args:
        pos, vel: state mean.
        cov: (P_00, P_01, P_11) of the symmetric 2 x 2 state covariance.
        prec, info: observation precision and information on the position.

    Shape: every tensor the same (any) shape. Returns (pos, vel, cov).
    """
    p00, p01, p11 = cov
    denom = 1.0 + prec * p00
    r, k = (info - prec * pos) / denom, prec / denom
    return pos + p00 * r, vel + p01 * r, (p00 - p00 * p00 * k, p01 - p00 * p01 * k, p11 - p01 * p01 * k)


def kalman_smoother(prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, accel_std: Tensor,
                    init_vel_std: Tensor, smooth: bool = True) -> tuple[Tensor, Tensor]:
    """Constant-velocity Kalman filter + RTS smoother fed with information-form observations (§7).

    ``smooth=False`` stops after the forward pass and returns the filtered (causal) posteriors: the
    estimate at frame t then depends on observations up to t only, like the reference MixDVAE.

    With F = [[1, 1], [0, 1]] and Q = q^2 [[1/4, 1/2], [1/2, 1]] the 2 x 2 algebra is written out
    elementwise on (P_00, P_01, P_11), in float64 (the pinned start makes the covariances tiny).

    Args:
        prec, info: per-frame observation precision and information on the position.
        start, start_var: frame-1 position prior.
        accel_std: process noise q (velocity change std per frame).
        init_vel_std: frame-1 velocity prior std.
        smooth: run the RTS backward pass (smoother) or not (filter).

    Shape:
        prec, info (T, D, M); start, start_var, accel_std, init_vel_std (D, M) -> (mean, var) (T, D, M)
        smoothed (or filtered) positions.
    """
    f64 = torch.float64
    prec, info = prec.to(f64), info.to(f64)
    q = accel_std.to(f64) ** 2
    pos, vel = start.to(f64), torch.zeros_like(start, dtype=f64)
    cov = (start_var.to(f64), torch.zeros_like(pos), init_vel_std.to(f64) ** 2)
    filt, pred = [], [None]
    for t in range(prec.shape[0]):
        if t > 0:                                                     # predict: x <- F x, P <- F P F^T + Q
            p00, p01, p11 = cov
            pos, vel = pos + vel, vel
            cov = (p00 + 2 * p01 + p11 + 0.25 * q, p01 + p11 + 0.5 * q, p11 + q)
            pred.append((pos, vel, cov))
        pos, vel, cov = kalman_update(pos, vel, cov, prec[t], info[t])
        filt.append((pos, vel, cov))
    if not smooth:
        return (torch.stack([f[0] for f in filt]).float(),
                torch.stack([f[2][0] for f in filt]).clamp_min(1e-12).float())
    means, variances = [pos], [cov[0]]
    for t in range(prec.shape[0] - 2, -1, -1):                         # RTS: G = P_f F^T P_pred^-1
        f_pos, f_vel, (a, b, c) = filt[t]
        p_pos, p_vel, (d, e, f) = pred[t + 1]
        det = d * f - e * e
        g00, g01 = ((a + b) * f - b * e) / det, (b * d - (a + b) * e) / det
        g10, g11 = ((b + c) * f - c * e) / det, (c * d - (b + c) * e) / det
        dp, dv = pos - p_pos, vel - p_vel
        pos, vel = f_pos + g00 * dp + g01 * dv, f_vel + g10 * dp + g11 * dv
        x, y, w = cov[0] - d, cov[1] - e, cov[2] - f                  # P_smooth(t+1) - P_pred(t+1)
        r0, r1 = g00 * x + g01 * y, g00 * y + g01 * w                  # first row of G (.)
        s0, s1 = g10 * x + g11 * y, g10 * y + g11 * w                  # second row
        cov = (a + r0 * g00 + r1 * g01, b + r0 * g10 + r1 * g11, c + s0 * g10 + s1 * g11)
        means.append(pos)
        variances.append(cov[0])
    mean, var = torch.stack(means[::-1]), torch.stack(variances[::-1])
    return mean.float(), var.clamp_min(1e-12).float()


class KalmanDynamics:
    """Constant-velocity source model for the VEM (the :class:`model.vem_mot.Dynamics` protocol).

    Args:
        accel_std_ratio: process noise q per frame, fraction of the start box's width (x) / height (y).
        init_vel_std_ratio: frame-1 velocity prior std, same unit.
        smooth: E-S as a Kalman smoother (forward + RTS, "KF-VEM smoother") or as a causal Kalman
            filter (forward pass only, "KF-VEM filter"), §7.
    """

    def __init__(self, accel_std_ratio: float = 0.01, init_vel_std_ratio: float = 0.1, smooth: bool = True):
        self.accel_std_ratio, self.init_vel_std_ratio, self.smooth = accel_std_ratio, init_vel_std_ratio, smooth

    def for_batch(self) -> KalmanDynamics:
        return self

    def e_z(self, m: Tensor, with_loss: bool = True) -> tuple[None, None]:
        """No latent variables: nothing to infer."""
        return None, None

    def e_s(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, context: None = None
            ) -> tuple[Tensor, Tensor]:
        """E-S as a Kalman smoother or filter. Shape: prec, info (T, D, M), start, start_var (D, M) -> 2 x (T, D, M)."""
        size = box_sizes(start, 0).abs().clamp_min(MIN_STD)
        return kalman_smoother(prec, info, start, start_var, self.accel_std_ratio * size,
                               self.init_vel_std_ratio * size, self.smooth)
