"""tools/tune_mot.py with the covariance-matching prior and range of model/covariance_matching.py set on the
command line (how the prior-weight grids of README "Tracking, round 7" were run; the shipped values are 800 and
(0.25, 4)):

    python docs/tracking_round7/tune_prior.py PRIOR_GAIN K_LOW K_HIGH -- TUNE_MOT_ARGS...
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import model.covariance_matching as cm  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[4] != "--":
        sys.exit(__doc__)
    cm.PRIOR_GAIN, cm.K_RANGE = float(sys.argv[1]), (float(sys.argv[2]), float(sys.argv[3]))
    import tune_mot  # noqa: E402

    tune_mot.main(sys.argv[5:])
