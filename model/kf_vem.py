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

from model import gauss2
from model.vem_mot import MIN_STD, box_sizes


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
    Q = (0.25 * q, 0.5 * q, q)
    filt, pred = [], [None]
    for t in range(prec.shape[0]):
        if t > 0:                                                     # predict: x <- F x, P <- F P F^T + Q
            pos, vel, cov = gauss2.predict(pos, vel, cov, gauss2.CONSTANT_VELOCITY, Q=Q)
            pred.append((pos, vel, cov))
        pos, vel, cov = gauss2.update(pos, vel, cov, prec[t], info[t])
        filt.append((pos, vel, cov))
    if not smooth:
        return (torch.stack([f[0] for f in filt]).float(),
                torch.stack([f[2][0] for f in filt]).clamp_min(1e-12).float())
    means, variances = gauss2.rts_backward(filt, pred, [gauss2.CONSTANT_VELOCITY] * len(filt))
    mean, var = torch.stack(means), torch.stack(variances)
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
