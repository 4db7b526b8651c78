#!/usr/bin/env bash
# Round 11: build test6 and run the frozen rows on it once, two jobs (docs/tracking_round11/README.md).
set -euo pipefail
P=${P:-python}
mkdir -p output
$P tools/make_mot_eval_sets.py --num-test6 2000
$P docs/tracking_round11/decide.py --sets synthetic,half_rate,occlusion > output/r11_a.log 2>&1 &
$P docs/tracking_round11/decide.py --sets camera,manoeuvre,clutter > output/r11_b.log 2>&1 &
wait
$P docs/tracking_round11/decide.py --table-only | tee docs/tracking_round11/results_test6.md
