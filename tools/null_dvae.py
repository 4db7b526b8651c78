"""Write the null ablation of an increments MOT DVAE: the same checkpoint with the decoder mean's output layer set
to zero, so that the network predicts nothing beyond its anchor (README, Tracking, round 10).

    python tools/null_dvae.py model/pretrained/mot_srnn_causal_vel.pt model/pretrained/mot_cv_null.pt

With ``[Network] increments`` the decoder mean is anchor + delta_std x out (:meth:`model.srnn.SRNN.output_frame`);
with ``out = 0`` it is the anchor alone:

- velocity-anchored DVAE (``velocity = True``): 2 x_{t-1} - x_{t-2}, constant velocity. Its E-S with
  ``dvae_es_var = fixed`` (or ``adaptive``) is then a constant-velocity Kalman filter or smoother whose process noise
  is k delta_std^2 (:meth:`model.fast_srnn.FastSRNN._velocity_step`): MixDVAE's E-S and noise model with nothing
  learned in the prediction;
- increments DVAE: x_{t-1}, a random walk.

The decoder's variance head, the encoder and the prior are kept, so E-Z and the ELBO of a DVAE choice still run; with
``dvae_es_var = model`` the variance still depends on the learned z. A row that runs this checkpoint next to the
original separates what the network learned from what the E-S and its noise model do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.checkpoint import load_dvae, save_checkpoint  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402


def null_dvae(src: Path, dst: Path) -> str:
    """Write ``src`` with a zero decoder-mean output layer to ``dst``; returns what the null predicts."""
    model, ckpt = load_dvae(src, head="gaussian", where=str(src))
    if not model.increments:
        raise UserError(f"checkpoint {str(src)!r}: a null ablation needs an increments DVAE ([Network] increments = "
                        "True); without an anchor a zero output predicts the training mean")
    model.gen_out.weight.data.zero_()
    model.gen_out.bias.data.zero_()
    extra = {k: v for k, v in ckpt.items() if k not in ("format", "head", "network", "stft", "model", "optimizer")}
    extra["null_of"] = str(src)
    save_checkpoint(dst, model, ckpt["network"], None, **extra)
    return "constant velocity (2 x_{t-1} - x_{t-2})" if model.velocity else "a random walk (x_{t-1})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="an increments MOT DVAE checkpoint")
    ap.add_argument("dst", type=Path, help="where to write its null ablation")
    args = ap.parse_args()
    if args.dst.resolve() == args.src.resolve():
        raise UserError(f"{args.dst}: the null ablation must not overwrite its source checkpoint")
    what = null_dvae(args.src, args.dst)
    print(f"wrote {args.dst}: {args.src.name} with a zero decoder mean output; it predicts {what}")


if __name__ == "__main__":
    run_main(main)
