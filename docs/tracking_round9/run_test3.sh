#!/usr/bin/env bash
# Round 9: build test3 and run the frozen rows on it, two jobs (docs/tracking_round9/README.md).
set -euo pipefail
P=${P:-python}
$P tools/make_mot_eval_sets.py --num-test3 2000
$P docs/tracking_round9/confirm.py --sets synthetic,half_rate,occlusion > output/r9_a.log 2>&1 &
$P docs/tracking_round9/confirm.py --sets camera,manoeuvre,clutter > output/r9_b.log 2>&1 &
wait
$P docs/tracking_round9/confirm.py --table-only --pooled | tee docs/tracking_round9/results_test3.md
