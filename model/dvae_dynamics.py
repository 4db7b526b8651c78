"""The SRNN DVAE as the MOT VEM's source model (§5.3–§5.5): the :class:`model.vem_mot.Dynamics`
the VEM calls for E-Z and E-S, with the fused :class:`model.fast_srnn.FastSRNN` recursions or, for
comparison, the SRNN's own one-step API.

Sequences are (T, D, M) with M = N * B sources of all samples, as in :mod:`model.vem_mot`.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from model.fast_srnn import FastSRNN
from model.fusion import fuse_gaussians, rts_identity_backward
from model.srnn import SRNN


class SRNNDynamics:
    """The SRNN DVAE as the VEM's source model: E-Z (5.3), E-S (5.4), fine-tuning (5.5).

    Args:
        model: a trained SRNN with the Gaussian head (data space = normalised coordinates).
        z_mode: "sample" draws z from q(z | m); "mean" propagates the posterior mean (§5.3).
        finetune: take one Adam step on the DVAE loss (4.5) with x = m per iteration (§5.5).
        lr: fine-tuning learning rate.
        beta: KL weight of the loss.
        var_scale: E-S uses var_scale x sigma^2_theta (variance inflation; 1 = the DVAE's own variance).
        fast: run the time loops on :class:`FastSRNN` (folded weights, time-major); False uses
            :meth:`SRNN.step` and :meth:`SRNN.inference` (same values, kept to measure the difference).
        es_mode: "filter" (the paper's E-S), "propagate", "smoother" or "iterated"
            (:class:`model.fast_srnn.FastSRNN`).
        es_var: "model" (sigma^2_theta, the paper), "fixed" (var_scale x the training increments' variance on
            every frame) or "adaptive" (that variance with a k per sequence estimated from the data,
            :mod:`model.covariance_matching`) as the variance of the E-S prediction
            (:class:`model.fast_srnn.FastSRNN`).
    """

    def __init__(self, model: SRNN, z_mode: str = "sample", finetune: bool = False, lr: float = 1e-3,
                 beta: float = 1.0, var_scale: float = 1.0, fast: bool = True, es_mode: str = "filter",
                 es_var: str = "model"):
        if z_mode not in ("sample", "mean"):
            raise ValueError(f"z_mode must be 'sample' or 'mean', got {z_mode!r}")
        self.model, self.z_mode, self.finetune, self.lr, self.beta = model.eval(), z_mode, finetune, lr, beta
        self.var_scale, self.use_fast, self.es_mode, self.es_var = var_scale, fast, es_mode, es_var
        if model.velocity and es_mode != "filter" and not fast:
            raise ValueError(f"a velocity-anchored DVAE's E-S {es_mode!r} (two-state covariance) runs on the fast "
                             "path only (fast=True)")
        self.optimizer: torch.optim.Optimizer | None = None
        self.fast = FastSRNN(self.model, var_scale, es_mode, es_var)

    def for_batch(self) -> SRNNDynamics:
        """Self, or (fine-tuning) a deep copy of the DVAE with a fresh Adam, so no batch sees another's updates."""
        if not self.finetune:
            self.fast.reset()
            return self
        other = SRNNDynamics(copy.deepcopy(self.model), self.z_mode, True, self.lr, self.beta, self.var_scale,
                             self.use_fast, self.es_mode, self.es_var)
        other.optimizer = torch.optim.Adam(other.model.parameters(), lr=self.lr)
        return other

    def select(self, columns: Tensor) -> None:
        """The VEM continues on the sources ``columns`` (of M) only: keep what is cached for them."""
        self.fast.select(columns)

    def e_z(self, m: Tensor, with_loss: bool = True) -> tuple[Tensor, Tensor | None]:
        """(5.3) z (T, Z, M) from the encoder (4.4) run on the means m (T, D, M), and (``with_loss``) the
        DVAE loss (4.5) with x = m. (5.5) With ``finetune``: one Adam step on that loss; z is taken before
        the step, the E-S of the same iteration uses the updated weights."""
        sample = self.z_mode == "sample"
        self._drive, self._drive_h = m.detach(), None            # what E-S "iterated" drives h_t with
        if not self.finetune and self.use_fast:
            with torch.no_grad():
                enc = self.fast.encode(m, sample)
                self._drive_h = enc["h"]
                return enc["z"], (self.fast.loss(m, enc, self.beta) if with_loss else None)
        x = m.permute(2, 0, 1)
        if not self.finetune:
            with torch.no_grad():
                if not with_loss:
                    return self.model.encode(x, sample).permute(1, 2, 0), None
                fwd = self.model(x, sample_z=sample)
                return fwd["z"].permute(1, 2, 0), self.model.loss(x, fwd, self.beta)[0]
        with torch.enable_grad():
            fwd = self.model(x, sample_z=sample)
            loss = self.model.loss(x, fwd, self.beta)[0]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        matching = self.fast.matching                 # the per-sequence k (adaptive) outlives the new weights
        self.fast = FastSRNN(self.model, self.var_scale, self.es_mode, self.es_var)
        self.fast.matching = matching
        return fwd["z"].detach().permute(1, 2, 0), loss.detach()

    @torch.no_grad()
    def e_s(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, z: Tensor
            ) -> tuple[Tensor, Tensor]:
        """(5.4) E-S, recursive over t: the DVAE prediction (mu_theta, sigma^2_theta) of frame t from
        h_t (4.1) driven by *this* iteration's m_{t-1} and z_t (4.3), fused with the observations.
        Frame 1 uses the pinned prior N(start, start_var).

        Shape: prec, info (T, D, M), start, start_var (D, M), z (T, Z, M) -> (m, var) (T, D, M).
        """
        drive_h = None
        if self.es_mode == "iterated":
            drive_h = self._drive_h
            if drive_h is None:
                drive_h = self.model.deterministic(self._drive.permute(2, 0, 1)).permute(1, 2, 0)
        if self.use_fast:
            return self.fast.filter(prec, info, start, start_var, z, drive_h)
        means, variances, priors, m_prev, m_prev2, var, state = [], [], [], None, None, None, None
        matching = self.fast.matching
        unit = self.fast.var_unit                                                  # (D, 1)
        q = None if matching is None else (unit * matching.start_pass(prec.shape[2], prec)).T
        for t in range(prec.shape[0]):
            if drive_h is None:
                (mu, v), state = self.model.step(m_prev, z[t].T, state)
            elif t > 0:
                mu, v = self.model.to_data(self.model.generate(drive_h[t].T, z[t].T),
                                           *self.model.frame_of_step(m_prev, m_prev2))
            if t == 0:
                mu, v = start.T, start_var.T
            elif self.es_var == "model":
                v = v * self.var_scale
            else:                                                       # fixed_var already has var_scale
                v = (self.fast.fixed_var.T if q is None else q).expand_as(v)
            if t > 0 and self.es_mode != "filter":                   # carry Var(s_{t-1}) (FastSRNN.filter)
                v = v + var
            priors.append((mu, v))
            var_prev, m_prev2 = var, m_prev
            m_prev, var = fuse_gaussians(prec[t].T, info[t].T, mu, v)
            if t > 0 and matching is not None:
                matching.observe(mu.T, v.T, var_prev.T, m_prev.T, var.T, unit)
            means.append(m_prev)
            variances.append(var)
        m, var = torch.stack(means).transpose(1, 2), torch.stack(variances).transpose(1, 2)
        if matching is not None:
            matching.finish()
        if self.es_mode in ("smoother", "iterated"):
            mu, v = (torch.stack(p).transpose(1, 2) for p in zip(*priors))
            return rts_identity_backward(m, var, mu, v)
        return m, var
