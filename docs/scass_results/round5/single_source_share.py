"""Round-5 diagnostic: run the VEM on one clean source of each of the 40 tuning mixtures (flute only, then speech
only); which share of the output power does each source model take? A source model that takes much of the *other*
source's power explains it.

    python docs/scass_results/round5/single_source_share.py [--flute=CKPT] [--ratio=R] SPEECH_CKPT [SPEECH_CKPT ...]

Defaults: the shipped flute DVAE and round 3's ratio_v_theta_x 0.05 (README quotes both ratios).
"""

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import torch  # noqa: E402

from model.scass_output import wiener_output  # noqa: E402
from model.vem_scass import run_vem  # noqa: E402
from tools.scass_runs import MixDVAEPoint, ModelCache, load_set, reference_stft  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    stft = reference_stft()
    data = load_set("data/generated/real_speech_mixtures", stft).subset(range(40))
    models = ModelCache(stft)
    clean = torch.from_numpy(data.clean).float()
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    speeches = [a for a in sys.argv[1:] if not a.startswith("--")]
    for speech in speeches:
        point = replace(MixDVAEPoint(), speech=speech, flute=options.get("flute", MixDVAEPoint().flute),
                        ratio_v_theta_x=float(options.get("ratio", 0.05)))
        dvaes = [models.source_model(point.flute, point.train_flute),
                 models.source_model(point.speech, point.train_speech)]
        for n, name in enumerate(("flute only", "speech only")):
            x = stft.stft(clean[:, n])
            torch.manual_seed(0)
            result = run_vem(dvaes, x, point.options())
            power = wiener_output(x, result.mu, result.v).abs().square()
            share = power.sum((2, 3)) / power.sum((1, 2, 3))[:, None]
            print(f"{Path(point.flute).name} + {Path(speech).name}, ratio {point.ratio_v_theta_x:g}, {name}: "
                  f"share to flute {share[:, 0].mean():.3f}, to speech {share[:, 1].mean():.3f}")
