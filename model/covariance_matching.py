"""Covariance matching: a per-sequence scale of the E-S prediction variance, estimated from the data
(``[VEM] dvae_es_var = adaptive``; not in the paper).

With ``dvae_es_var = fixed`` the E-S prediction of every sequence gets the variance ``q = k * base`` with one
k for all sequences (``dvae_var_scale``, base = the training increments' variance delta_std^2). Validation
wants a small k on smooth motion and a large one under camera motion or at half frame rate (README,
Tracking, round 7). ``adaptive`` starts every sequence at that k and re-estimates it after each E-S pass
from the pass's own filter corrections (innovation-based covariance matching, as in adaptive Kalman
filtering): at frame t the fusion moves the prior mean mu_t by ``r_t = m_t - mu_t = K_t nu_t`` with the gain
``K_t = 1 - V_t / P_t`` (elementwise). If the model is right, ``E[r_t^2] = K_t P_t`` and the prior variance is
``P_t = c V_{t-1} + q`` (c = 1 when E-S carries Var(s_{t-1}), 0 for the paper's ``filter``), so

    k_hat = sum_{t,d} (r_td^2 - K_td c V_{t-1,d}) / base_d  /  sum_{t,d} K_td          (per sequence)

is an unbiased moment estimate of k. Frames without detections have K = 0 and add nothing. Sequences whose
total gain is below :data:`MIN_GAIN` keep their previous k. The estimate is shrunk towards k0 by a prior of
weight :data:`PRIOR_GAIN` (in units of summed gain; a sequence of 60 well-observed frames and 4 coordinates
sums to about 240) and clamped to :data:`K_RANGE` x k0. The next E-S pass (the next VEM iteration, or the next
initialisation window) uses it.

The same estimate does not carry over to the KF-VEM's constant-velocity model: applied to its velocity corrections
(base q^2, carried P_11) on simulated constant-velocity tracks, the iteration settles below the true scale
(0.5-0.8 for 1, 3.2-3.4 for 4) and at the lower bound for 0.3 (README, Tracking, round 7), so there is no
adaptive KF-VEM row.

Shapes: base (D, 1) or (D, M); per-frame tensors (D, M) with M = N * B sources; k (1, M).
"""

from __future__ import annotations

import torch
from torch import Tensor

K_RANGE = (0.25, 4.0)       # k stays within these multiples of k0
PRIOR_GAIN = 800.0          # weight of k0 in the estimate, in units of summed gain (module docstring)
MIN_GAIN = 1.0              # sum of K below which a sequence's k is not re-estimated (about one observed value)


class CovarianceMatching:
    """Per-sequence k of a prediction variance ``q = k * base`` (module docstring).

    The caller owns ``base`` (delta_std^2 in data space for the DVAE): it multiplies
    :meth:`start_pass`'s k into its variance and hands ``base`` to :meth:`observe`.

    Args:
        k0: starting k of every sequence (``dvae_var_scale``).
        carry: the prior variance carries the previous posterior variance (every ``dvae_es`` but ``filter``).
    """

    def __init__(self, k0: float, carry: bool):
        self.k0, self.carry = float(k0), carry
        self.bounds = (K_RANGE[0] * self.k0, K_RANGE[1] * self.k0)
        self.k: Tensor | None = None
        self._num = self._den = None

    def reset(self) -> None:
        """Forget every sequence's k (a new batch starts at k0)."""
        self.k = None

    def select(self, columns: Tensor) -> None:
        """Keep the k of the sequences ``columns`` (of M) only."""
        if self.k is not None:
            self.k = self.k[:, columns]

    def start_pass(self, M: int, like: Tensor) -> Tensor:
        """(1, M) k of every sequence for the next pass (k0 for a batch of another size than the stored one);
        starts the pass's sums."""
        if self.k is None or self.k.shape[1] != M:
            self.k = torch.full((1, M), self.k0, dtype=like.dtype, device=like.device)
        self._num = self._den = None
        return self.k

    def observe(self, mu: Tensor, prior_var: Tensor, var_prev: Tensor, m: Tensor, var: Tensor, base: Tensor
                ) -> None:
        """Add frame t: prior N(mu, prior_var) whose carried part is var_prev (the rest is k * base), posterior
        (m, var). All (D, M) (base may broadcast)."""
        gain = 1.0 - var / prior_var
        r2 = (m - mu).square()
        if self.carry:
            r2 = r2 - gain * var_prev
        num, den = (r2 / base).sum(0, keepdim=True), gain.sum(0, keepdim=True)
        self._num = num if self._num is None else self._num + num
        self._den = den if self._den is None else self._den + den

    def finish(self) -> None:
        """End of a pass: update k where the pass saw enough observations."""
        if self._num is None:
            return
        estimate = ((self._num + PRIOR_GAIN * self.k0) / (self._den + PRIOR_GAIN)).clamp(*self.bounds)
        self.k = torch.where(self._den >= MIN_GAIN, estimate.to(self.k.dtype), self.k)
        self._num = self._den = None
