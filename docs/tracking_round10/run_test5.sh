#!/usr/bin/env bash
# Round 10: build test5 and run the frozen rows on it once, two jobs (docs/tracking_round10/README.md).
set -euo pipefail
P=${P:-python}
$P tools/make_mot_eval_sets.py --num-test5 2000
$P docs/tracking_round10/separate.py --sets synthetic,half_rate,occlusion > output/r10_a.log 2>&1 &
$P docs/tracking_round10/separate.py --sets camera,manoeuvre,clutter > output/r10_b.log 2>&1 &
wait
$P docs/tracking_round10/separate.py --table-only | tee docs/tracking_round10/results_test5.md
