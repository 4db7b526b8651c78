#!/usr/bin/env bash
# Round 10: the null DVAE (network output zero, tools/null_dvae.py -> model/pretrained/mot_cv_null.pt) gets the
# round-6 grid budget on the six 300-sample validation splits.
set -euo pipefail
P=${P:-.venv/bin/python}
if [ "$1" = smoother ]; then
  $P tools/tune_mot.py --data data/generated/mot_sets/synthetic/val --data data/generated/mot_sets/half_rate/val --data data/generated/mot_sets/occlusion/val --data data/generated/mot_sets/camera/val --data data/generated/mot_sets/manoeuvre/val --clutter-data data/generated/mot_sets/clutter/val --out docs/tracking_round10/tuning/null_smoother --methods mixdvae --dvae cv-null=model/pretrained/mot_cv_null.pt \
    --taus 0.01,0.03,0.1,0.3 --init-lens 5,10 --z-modes sample --var-scales 0.1,0.3,1,2 --dvae-es smoother --es-vars fixed --num-threads 1
else
  $P tools/tune_mot.py --data data/generated/mot_sets/synthetic/val --data data/generated/mot_sets/half_rate/val --data data/generated/mot_sets/occlusion/val --data data/generated/mot_sets/camera/val --data data/generated/mot_sets/manoeuvre/val --clutter-data data/generated/mot_sets/clutter/val --out docs/tracking_round10/tuning/null_causal --methods mixdvae --dvae cv-null=model/pretrained/mot_cv_null.pt \
    --taus 0.01,0.03,0.1,0.3 --init-lens 5,10 --z-modes sample --var-scales 0.01,0.03,0.1,0.3 --dvae-es propagate --es-vars fixed --num-threads 1
fi
