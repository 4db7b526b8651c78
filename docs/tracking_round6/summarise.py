"""Round-6 tracking summary tables for README, from the results.json files of tools/mot_results_table.py.

    python docs/tracking_round6/summarise.py output/r6/results_*/results.json

The same two tables as round 5 (docs/tracking_round5/summarise.py), with round 6's rows. The roles were fixed on
validation before the test splits were run (README, round 6): the causal row is the best causal reference-size row
by mean validation IDF1, the default row the best MixDVAE row by the same mean among those that keep the speed target
(>= 300 seq/s), the non-causal row the best row of the non-causal DVAE.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking_round5"))

from summarise import main  # noqa: E402

CAUSAL, DEFAULT = "MixDVAE-dngap-propagate-fixed", "MixDVAE-dngap-smoother-fixed"
ROWS = {"MixDVAE-dngap-propagate": "MixDVAE round-5 causal row: denoising DVAE, propagate E-S, model variance",
        CAUSAL: "**MixDVAE causal**: denoising DVAE, propagate E-S, fixed variance",
        "MixDVAE-dngap-smoother": "MixDVAE round-5 default: denoising DVAE, smoother E-S, model variance",
        DEFAULT: "**MixDVAE default**: denoising DVAE (reference size), smoother E-S, fixed variance",
        "MixDVAE-dngap-iterated-fixed": "MixDVAE denoising DVAE, iterated E-S, fixed variance",
        "MixDVAE-large-dn-smoother-fixed": "MixDVAE larger denoising DVAE, smoother E-S, fixed variance (best on val)",
        "MixDVAE-noncausal-smoother-fixed": "MixDVAE non-causal, smoother E-S, fixed variance",
        "KF-VEM-filter": "KF-VEM filter", "KF-VEM-smoother": "KF-VEM smoother", "SORT": "SORT-style"}

if __name__ == "__main__":
    main(sys.argv[1:], ROWS, CAUSAL, DEFAULT)
