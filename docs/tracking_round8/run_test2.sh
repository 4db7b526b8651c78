#!/usr/bin/env bash
# Round 8: the shipped rows on the test2 splits (docs/tracking_round8/README.md), three VEM seeds.
set -euo pipefail
P=model/pretrained; T6=docs/tracking_round6/tuning; OUT=${OUT:-output/r8}
COMMON=(--split test2 --vem-seeds 0,1,2 --methods mixdvae,kf_filter,kf_smoother,sort --num-threads 1
  --tuning docs/tracking_round7/best_propagate_adaptive.json --tuning $T6/best_propagate_fixed.json
  --tuning $T6/best_smoother_fixed.json --tuning $T6/best_noncausal_fixed.json --tuning $T6/best_kf.json
  --dvae dngap-smoother-fixed=$P/mot_srnn_causal_dngap.pt --dvae dngap-propagate-adaptive=$P/mot_srnn_causal_dngap.pt
  --dvae dngap-propagate-fixed=$P/mot_srnn_causal_dngap.pt --dvae large-dn-smoother-fixed=$P/mot_srnn_large_dn.pt
  --dvae noncausal-smoother-fixed=$P/mot_srnn_noncausal.pt)
case "${1:-all}" in
  a) python tools/mot_results_table.py "${COMMON[@]}" --sets synthetic,half_rate,occlusion --out $OUT/test2_a ;;
  b) python tools/mot_results_table.py "${COMMON[@]}" --sets camera,manoeuvre --out $OUT/test2_b
     python tools/mot_results_table.py "${COMMON[@]}" --sets clutter --clutter-logprob -10 --out $OUT/test2_clutter ;;
  all) "$0" a; "$0" b ;;
esac
