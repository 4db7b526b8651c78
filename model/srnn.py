"""The SRNN dynamical VAE (DESIGN §4): one class, a Gaussian head (tracking) and an
Itakura–Saito head (audio power spectra).

Notation (shapes use B = batch, T = time, D = x_dim, Z = z_dim, H = dim_RNN_h):

- (4.1) ``h_t = LSTM(phi_x(x_{t-1}), h_{t-1})``, x_0 = 0          -> :meth:`SRNN.deterministic`, :meth:`SRNN.step`
- (4.2) ``p(z_t | h_t, z_{t-1}) = N(mu_p, sigma_p^2)``             -> :meth:`SRNN.prior`
- (4.3) ``p(x_t | h_t, z_t)``: Gaussian N(mu, sigma^2) or N_c(0, v)  -> :meth:`SRNN.generate`, :meth:`SRNN.to_data`
- (4.4) ``q(z_t | z_{t-1}, g_t)``, g_t = [h_t, x_t] or backward LSTM -> :meth:`SRNN.inference`
- (4.5) loss = reconstruction + beta * KL                          -> :meth:`SRNN.loss`

Inputs are turned into *features* before entering the networks: standardised
coordinates (Gaussian head) or standardised log-power (IS head), with statistics stored
as buffers (saved in the checkpoint). Decoder outputs are mapped back to data space by
:meth:`SRNN.to_data`, so the VEM works in image-normalised coordinates / power.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from model.losses import gaussian_nll, is_divergence, kl_gaussians

HEADS = ("gaussian", "is")
LOG_EPS = 1e-10  # floor for log-power features; power is >= 0


def mlp(in_dim: int, sizes: Sequence[int], activation: str, dropout_p: float) -> tuple[nn.Module, int]:
    """Dense layers ``sizes`` with activation and dropout; empty ``sizes`` = identity."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_dim, size), act()]
        if dropout_p > 0:
            layers.append(nn.Dropout(dropout_p))
        in_dim = size
    return (nn.Sequential(*layers) if layers else nn.Identity()), in_dim


class SRNN(nn.Module):
    """Stochastic recurrent neural network (Fraccaro et al., 2016) as used by MixDVAE."""

    def __init__(self, x_dim: int, z_dim: int, dense_x_h: Sequence[int], dim_RNN_h: int, num_RNN_h: int,
                 dense_hz_z: Sequence[int], dense_hz_x: Sequence[int], dense_gz_z: Sequence[int],
                 dense_hx_g: Sequence[int] = (), dim_RNN_g: int = 0, num_RNN_g: int = 1,
                 activation: str = "tanh", dropout_p: float = 0.0, head: str = "gaussian"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.x_dim, self.z_dim, self.head = x_dim, z_dim, head
        self.register_buffer("feat_mean", torch.zeros(x_dim))
        self.register_buffer("feat_std", torch.ones(x_dim))
        # (4.1) deterministic recurrence
        self.mlp_x_h, dx = mlp(x_dim, dense_x_h, activation, dropout_p)
        self.rnn_h = nn.LSTM(dx, dim_RNN_h, num_RNN_h, batch_first=True)
        # (4.4) inference network input g_t
        if dim_RNN_g > 0:
            self.mlp_hx_g, dg_in = mlp(dim_RNN_h + x_dim, dense_hx_g, activation, dropout_p)
            self.rnn_g: nn.LSTM | None = nn.LSTM(dg_in, dim_RNN_g, num_RNN_g, batch_first=True)
            g_dim = dim_RNN_g
        else:
            self.mlp_hx_g, self.rnn_g, g_dim = nn.Identity(), None, dim_RNN_h + x_dim
        self.mlp_gz_z, d = mlp(g_dim + z_dim, dense_gz_z, activation, dropout_p)
        self.inf_mean, self.inf_logvar = nn.Linear(d, z_dim), nn.Linear(d, z_dim)
        # (4.2) prior
        self.mlp_hz_z, d = mlp(dim_RNN_h + z_dim, dense_hz_z, activation, dropout_p)
        self.prior_mean, self.prior_logvar = nn.Linear(d, z_dim), nn.Linear(d, z_dim)
        # (4.3) generation
        self.mlp_hz_x, d = mlp(dim_RNN_h + z_dim, dense_hz_x, activation, dropout_p)
        self.gen_out = nn.Linear(d, x_dim)                     # mean (gaussian) or log-variance (is)
        self.gen_logvar = nn.Linear(d, x_dim) if head == "gaussian" else None

    # ----------------------------------------------------------------- features
    def features(self, x: Tensor) -> Tensor:
        """Network input features of data ``x`` (..., D): standardised coordinates or log-power."""
        if self.head == "is":
            x = torch.log(x.clamp_min(0) + LOG_EPS)
        return (x - self.feat_mean) / self.feat_std

    def set_feature_stats(self, mean: Tensor, std: Tensor) -> None:
        """Store the training-set feature statistics (D,) used by :meth:`features`."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-6))

    # ----------------------------------------------------------------- (4.1)
    def deterministic(self, x: Tensor) -> Tensor:
        """(4.1) over a whole sequence, driven by ``x`` (B, T, D) -> h (B, T, H); x_0 = 0 (feature space)."""
        feat = self.mlp_x_h(self.features(x))
        feat = torch.cat([torch.zeros_like(feat[:, :1]), feat[:, :-1]], dim=1)
        h, _ = self.rnn_h(feat)
        return h

    def step(self, x_prev: Tensor | None, z_t: Tensor, state=None):
        """One step of (4.1) then (4.3), for the VEM's time recursion.

        Args:
            x_prev: (B, D) previous source estimate in data space, or None at t = 1 (x_0 = 0).
            z_t: (B, Z) latent at time t.
            state: LSTM state returned by the previous call (None at t = 1).
        Returns:
            (params, state): params as :meth:`to_data` for one frame — (mean, var) each (B, D) for
            the Gaussian head, (v,) (B, D) for the IS head.
        """
        if x_prev is None:
            feat = self.mlp_x_h(torch.zeros(z_t.shape[0], self.x_dim, device=z_t.device, dtype=z_t.dtype))
            feat = torch.zeros_like(feat)
        else:
            feat = self.mlp_x_h(self.features(x_prev))
        h, state = self.rnn_h(feat[:, None], state)
        return self.to_data(self.generate(h[:, 0], z_t)), state

    # ----------------------------------------------------------------- (4.4)
    def inference(self, x: Tensor, h: Tensor, sample: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """(4.4) q(z_t | z_{t-1}, g_t), recursive over t.

        Shape: x (B, T, D), h (B, T, H) -> z, z_mean, z_logvar each (B, T, Z).
        ``sample=False`` propagates the posterior mean instead of a sample.
        """
        g = torch.cat([h, self.features(x)], dim=-1)
        if self.rnn_g is not None:
            g_in = self.mlp_hx_g(g)
            g, _ = self.rnn_g(torch.flip(g_in, dims=[1]))  # backward LSTM over time
            g = torch.flip(g, dims=[1])
        B, T, _ = g.shape
        z_prev = g.new_zeros(B, self.z_dim)
        zs, means, logvars = [], [], []
        for t in range(T):
            e = self.mlp_gz_z(torch.cat([g[:, t], z_prev], dim=-1))
            mean, logvar = self.inf_mean(e), self.inf_logvar(e)
            z_prev = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), torch.stack(means, 1), torch.stack(logvars, 1)

    # ----------------------------------------------------------------- (4.2)
    def prior(self, h: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """(4.2) prior parameters, vectorised over time: h (B, T, H), z (B, T, Z) -> 2 x (B, T, Z)."""
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)
        e = self.mlp_hz_z(torch.cat([h, z_prev], dim=-1))
        return self.prior_mean(e), self.prior_logvar(e)

    # ----------------------------------------------------------------- (4.3)
    def generate(self, h: Tensor, z: Tensor) -> tuple[Tensor, ...]:
        """(4.3) decoder in feature space: (mean_f, logvar_f) (Gaussian) or (logv_f,) (IS); shapes (..., D)."""
        e = self.mlp_hz_x(torch.cat([h, z], dim=-1))
        if self.head == "gaussian":
            return self.gen_out(e), self.gen_logvar(e)
        return (self.gen_out(e),)

    def to_data(self, out: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Map decoder outputs to data space: (mean, var) in coordinates, or (v,) power variance."""
        if self.head == "gaussian":
            mean_f, logvar_f = out
            return mean_f * self.feat_std + self.feat_mean, torch.exp(logvar_f) * self.feat_std**2
        return (torch.exp(self.log_v(out[0])),)

    def log_v(self, logv_f: Tensor) -> Tensor:
        """IS head: log-variance in data space from the standardised decoder output."""
        return logv_f * self.feat_std + self.feat_mean

    # ----------------------------------------------------------------- passes
    def forward(self, x: Tensor, ss_prob: float = 0.0, sample_z: bool = True) -> dict[str, Tensor]:
        """Training pass with scheduled sampling (§4).

        With probability ``ss_prob`` per frame, the recurrence (4.1) is driven by the model's own
        teacher-forced reconstruction x̂_{t-1} instead of x_{t-1}; the encoder always sees the true x.

        Shape: x (B, T, D). Returns a dict of (B, T, ·) tensors: out (decoder outputs, feature space),
        z, z_mean, z_logvar, p_mean, p_logvar.
        """
        x_rec = x
        if ss_prob > 0:
            with torch.no_grad():
                x_hat = self.to_data(self.forward(x, 0.0, sample_z)["out"])[0]
                use_hat = torch.rand(x.shape[:2], device=x.device) < ss_prob
                x_rec = torch.where(use_hat[..., None], x_hat, x)
        h = self.deterministic(x_rec)
        z, z_mean, z_logvar = self.inference(x, h, sample=sample_z)
        p_mean, p_logvar = self.prior(h, z)
        return {"out": self.generate(h, z), "z": z, "z_mean": z_mean, "z_logvar": z_logvar,
                "p_mean": p_mean, "p_logvar": p_logvar}

    def loss(self, x: Tensor, fwd: dict[str, Tensor], beta: float, kl_weight: float = 1.0
             ) -> tuple[Tensor, Tensor, Tensor]:
        """(4.5) recon + beta * kl_weight * KL, each averaged over batch x time (summed over dims).

        Gaussian head: NLL in standardised coordinates; IS head: IS divergence on power.
        Returns (total, recon, kl) scalars.
        """
        if self.head == "gaussian":
            mean_f, logvar_f = fwd["out"]
            recon = gaussian_nll(self.features(x), mean_f, logvar_f).sum(-1)
        else:
            recon = is_divergence(x, self.log_v(fwd["out"][0])).sum(-1)
        kl = kl_gaussians(fwd["z_mean"], fwd["z_logvar"], fwd["p_mean"], fwd["p_logvar"]).sum(-1)
        recon, kl = recon.mean(), kl.mean()
        return recon + beta * kl_weight * kl, recon, kl

    def encode(self, x: Tensor, sample: bool = True) -> Tensor:
        """E-Z helper (§5.3, §6.4): z (B, T, Z) from the encoder run on data ``x`` (B, T, D)."""
        return self.inference(x, self.deterministic(x), sample=sample)[0]

    def reconstruct(self, x: Tensor) -> tuple[Tensor, ...]:
        """Teacher-forced reconstruction with posterior-mean z, in data space ((B, T, D) tensors)."""
        h = self.deterministic(x)
        z = self.inference(x, h, sample=False)[0]
        return self.to_data(self.generate(h, z))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


