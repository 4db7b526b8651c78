"""Round-5 screening on the 40 tuning mixtures of the real-speech validation set (never the 60 held out):
SI-SDR of MixDVAE (Wiener output, 70 iterations, seed 0) for a speech DVAE, a flute DVAE and several ratios.

    python docs/scass_results/round5/screen.py --speech model/pretrained/speech_srnn_bl.pt \
        --flute model/pretrained/flute_srnn_intf.pt --ratios 0.0003,0.001,0.01,0.05
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import torch  # noqa: E402

from tools.scass_runs import MixDVAEPoint, ModelCache, load_set, mixdvae_scores, reference_stft  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speech", default=MixDVAEPoint().speech)
    ap.add_argument("--flute", default=MixDVAEPoint().flute)
    ap.add_argument("--ratios", default="0.0003")
    ap.add_argument("--data", default="data/generated/real_speech_mixtures")
    ap.add_argument("--tune", type=int, default=40, help="the first TUNE mixtures")
    args = ap.parse_args()
    torch.set_num_threads(1)
    stft = reference_stft()
    data = load_set(args.data, stft).subset(range(args.tune))
    models = ModelCache(stft)
    for ratio in (float(r) for r in args.ratios.split(",")):
        point = replace(MixDVAEPoint(), speech=args.speech, flute=args.flute, ratio_v_theta_x=ratio)
        score = mixdvae_scores(point, data, models)[("wiener", point.n_iter)].mean(0)
        print(f"{Path(args.flute).name} + {Path(args.speech).name}, ratio {ratio:g}: flute {score[0]:.2f} "
              f"speech {score[1]:.2f} mean {score.mean():.2f}", flush=True)
