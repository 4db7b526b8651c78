#!/usr/bin/env bash
# Round 5 of the equal tuning on real speech (README, "Equal tuning on real speech", round 5). One torch thread per job.
set -e
cd "$(dirname "$0")/../../.."   # the repository root
P=.venv/bin/python; G=data/generated; R=$G/real_speech_train/train; S=$G/surrogate/speech/train
# data: the real-speech training set, the band-limited synthetic speech (the control's interference), +-5 dB sets
$P data/real_speech_collect.py --set train --out $G/real_speech_train --val-fraction 0.1
$P data/scass_surrogate_corpus.py --out $G/surrogate_bl4k --seed 0 --aug-bandlimit 3400,4000 --aug-prob 0.5 \
    --aug-splits train --flute-train 0 --flute-val 0 --flute-test 0 --jobs 1
# the flute DVAE against real speech (shipped) and against synthetic speech (control)
$P train_dvae_single.py config/cfg_dvae_single_scass_flute_intf.ini
$P train_dvae_single.py config/cfg_dvae_single_scass_flute_intf.ini --set User.run_name=flute_intf_surr \
    --set Training.interference_dir=$G/surrogate_bl4k/speech/train
# (tools/ship_checkpoint.py output/<run>/best.pt model/pretrained/flute_srnn_intf.pt / flute_srnn_intf_synth.pt)
# MixDVAE grid on the 40 tuning mixtures (one line per DVAE pair; ratios as in README)
$P docs/scass_results/round5/screen.py --ratios 0.0001,0.0003,0.001,0.003,0.005,0.01,0.02,0.03,0.05,0.1
# NMF grid with the real-speech dictionary
$P tools/tune_scass.py --data $G/real_speech_mixtures --tune 40 --out output/tuning_scass/round5_real_train \
    --methods nmf --atoms 4,8,16,32 --betas kl --sep-iters 50,100,200 --nmf-train-speech $R --allow-unequal
$P tools/tune_scass.py --data $G/real_speech_mixtures --tune 40 --out output/tuning_scass/round5_real_train_big \
    --methods nmf --atoms 48,64,96,128 --betas kl --sep-iters 50,100 --nmf-train-speech $R --allow-unequal
$P tools/tune_scass.py --data $G/real_speech_mixtures --tune 40 --out output/tuning_scass/round5_real_train_big2 \
    --methods nmf --atoms 80,96 --betas kl --sep-iters 100,200,400 --nmf-train-speech $R --allow-unequal
# held out, and the SNR tables
NT="NMF tuned (96 atoms, real-prompt speech dictionary, 400 it)"
M=(--method "MixDVAE, round 5 (new default)=mixdvae"
   --method "MixDVAE, round 3=mixdvae,flute=model/pretrained/flute_srnn.pt,ratio_v_theta_x=0.05"
   --method "$NT=nmf,n_components=96,iterations_separation=400,train_speech=$R"
   --method "NMF, round 3 (8 atoms, synthetic-speech dictionary)=nmf,n_components=8,iterations_separation=100,train_speech=$S"
   --method IBM=ibm --method Mixture=mixture)
$P tools/scass_table.py --out output/audio_r6/final_heldout --skip 40 --set "real 0 dB held-out=$G/real_speech_mixtures" \
    --reference "$NT" "${M[@]}"
$P tools/scass_table.py --out output/audio_r6/final_snr_real --set "real -5 dB=$G/real_speech_mixtures_snr_m5" \
    --set "real 0 dB=$G/real_speech_mixtures" --set "real +5 dB=$G/real_speech_mixtures_snr_p5" --reference "$NT" "${M[@]}"
$P tools/scass_table.py --out output/audio_r6/final_snr_surrogate --set "surrogate -5 dB=$G/scass_mixtures/test_snr_m5" \
    --set "surrogate 0 dB=$G/scass_mixtures/test" --set "surrogate +5 dB=$G/scass_mixtures/test_snr_p5" \
    --reference "$NT" "${M[@]}"
# the levers table (one change at a time) and the other speech DVAEs: heldout_levers.md, surrogate_levers.md,
# heldout_speech_dvaes.md (the same tool with the rows they name; checkpoints of those runs are not shipped)
