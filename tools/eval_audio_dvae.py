"""Itakura–Saito fit of audio DVAEs on validation sets, against a static per-frequency power model.

    python tools/eval_audio_dvae.py --dvae flute=model/pretrained/flute_srnn.pt \
        --dvae speech=model/pretrained/speech_srnn.pt \
        --data flute=data/generated/surrogate/flute --data speech=data/generated/surrogate/speech

Each ``--data NAME=DIR`` names a corpus with ``train/`` and ``val/`` folders. Reported per frame
(mean over frames of the IS divergence summed over frequency bins):
- DVAE: teacher-forced reconstruction of the validation power spectrogram (posterior-mean z);
- static: v_f = mean training power of bin f (the IS-optimal constant model), on the same frames;
and the table of every DVAE on every validation set (the diagonal should be the smallest per row of
data: each DVAE fits its own source best).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.audio_dataset import SpectrogramDataset
from model.losses import is_divergence
from utils.checkpoint import load_dvae
from utils.errors import UserError, run_main
from utils.stft import STFT


def pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--{what} expects NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        out[name] = path
    return out


def stack(ds: SpectrogramDataset) -> torch.Tensor:
    return torch.stack([ds[i] for i in range(len(ds))])


@torch.no_grad()
def is_per_frame(power: torch.Tensor, v: torch.Tensor) -> float:
    return is_divergence(power, torch.log(v)).sum(-1).mean().item()


@torch.no_grad()
def dvae_is(model, power: torch.Tensor, batch: int = 128) -> float:
    vals = [is_divergence(x, torch.log(model.reconstruct(x)[0])).sum(-1).flatten()
            for x in power.split(batch)]
    return torch.cat(vals).mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dvae", action="append", required=True, help="NAME=checkpoint.pt")
    ap.add_argument("--data", action="append", required=True, help="NAME=corpus dir with train/ and val/")
    ap.add_argument("--sequence-len", type=int, default=50)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dvaes = {n: load_dvae(p, head="is") for n, p in pairs(args.dvae, "dvae").items()}
    stft_cfg = next(iter(dvaes.values()))[1]["stft"]
    stft = STFT.from_config(stft_cfg)
    result = {"static": {}, "dvae": {}}
    print(f"{'validation set':>15} {'static IS/frame':>16} " + " ".join(f"{'DVAE ' + n:>14}" for n in dvaes))
    for dname, root in pairs(args.data, "data").items():
        kw = dict(stft=stft, sequence_len=args.sequence_len, trim=bool(stft_cfg.get("trim", True)))
        train = stack(SpectrogramDataset(Path(root) / "train", **kw))
        val = stack(SpectrogramDataset(Path(root) / "val", **kw))
        static_v = train.reshape(-1, train.shape[-1]).mean(0).clamp_min(1e-10)
        result["static"][dname] = is_per_frame(val, static_v.expand_as(val))
        result["dvae"][dname] = {n: dvae_is(m, val) for n, (m, _) in dvaes.items()}
        print(f"{dname:>15} {result['static'][dname]:16.1f} "
              + " ".join(f"{result['dvae'][dname][n]:14.1f}" for n in dvaes))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    run_main(main)
