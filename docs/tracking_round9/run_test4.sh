#!/usr/bin/env bash
# Round 9b: build test4 and run the rows picked on val2 on it, two jobs (docs/tracking_round9/README.md).
set -euo pipefail
P=${P:-python}
$P tools/make_mot_eval_sets.py --num-test4 2000
$P docs/tracking_round9/confirm_b.py --sets synthetic,half_rate,occlusion > output/r9b_a.log 2>&1 &
$P docs/tracking_round9/confirm_b.py --sets camera,manoeuvre,clutter > output/r9b_b.log 2>&1 &
wait
$P docs/tracking_round9/confirm_b.py --table-only | tee docs/tracking_round9/results_test4.md
