cd "$(dirname "$0")/../../.."   # the repository root
G=data/generated
OLD=model/pretrained/speech_srnn.pt
C=$(ls -d output/SC-ASS_speech_warm_plain_tf_*)/best.pt
M=(--method "MixDVAE, paper (speech_srnn.pt, 0.03, posterior mean)=mixdvae,ratio_v_theta_x=0.03,output=mean,speech=$OLD"
   --method "MixDVAE, round 2 (speech_srnn.pt, 0.1, Wiener)=mixdvae,ratio_v_theta_x=0.1,speech=$OLD"
   --method "… round 2 at ratio 0.05=mixdvae,ratio_v_theta_x=0.05,speech=$OLD"
   --method "… band-limit teacher-forced speech DVAE at ratio 0.1=mixdvae,ratio_v_theta_x=0.1"
   --method "MixDVAE, round 3 shipped (speech_srnn_bl.pt, 0.05, Wiener)=mixdvae"
   --method "… control: unaugmented teacher-forced speech DVAE, 0.05=mixdvae,speech=$C"
   --method "NMF shipped (32 atoms)=nmf,dictionary=model/pretrained/nmf_surrogate.npz,iterations_separation=50"
   --method "NMF, round 3 tuned (8 atoms, 100 iterations)=nmf,n_components=8,iterations_separation=100"
   --method IBM=ibm --method Mixture=mixture)
for ref in "NMF, round 3 tuned (8 atoms, 100 iterations)" "MixDVAE, round 2 (speech_srnn.pt, 0.1, Wiener)"; do
  tag=$([ "${ref:0:3}" = NMF ] && echo nmf || echo r2)
  OMP_NUM_THREADS=1 .venv/bin/python tools/scass_table.py --out output/round3_real_heldout --skip 40 \
     --set "real 0 dB held-out=$G/real_speech_mixtures" --reference "$ref" "${M[@]}"
  cp output/round3_real_heldout/table.md output/round3_real_heldout/table_vs_$tag.md
  OMP_NUM_THREADS=1 .venv/bin/python tools/scass_table.py --out output/round3_surrogate \
     --set "surrogate 0 dB=$G/scass_mixtures/test" --reference "$ref" "${M[@]}"
  cp output/round3_surrogate/table.md output/round3_surrogate/table_vs_$tag.md
done
S=(--method "NMF shipped (32 atoms)=nmf,dictionary=model/pretrained/nmf_surrogate.npz,iterations_separation=50"
   --method "NMF, round 3 tuned (8 atoms, 100 iterations)=nmf,n_components=8,iterations_separation=100"
   --method "MixDVAE, round 2 (speech_srnn.pt, 0.1, Wiener)=mixdvae,ratio_v_theta_x=0.1,speech=$OLD"
   --method "MixDVAE, round 3 shipped (speech_srnn_bl.pt, 0.05, Wiener)=mixdvae"
   --method IBM=ibm --method Mixture=mixture)
for ref in "NMF, round 3 tuned (8 atoms, 100 iterations)" "NMF shipped (32 atoms)"; do
  tag=$([ "${ref:5:5}" = round ] && echo nmf8 || echo nmf32)
  OMP_NUM_THREADS=1 .venv/bin/python tools/scass_table.py --out output/round3_snr_real --reference "$ref" \
     --set "real -5 dB=$G/real_speech_mixtures_snr_m5" --set "real 0 dB=$G/real_speech_mixtures" \
     --set "real +5 dB=$G/real_speech_mixtures_snr_p5" "${S[@]}"
  cp output/round3_snr_real/table.md output/round3_snr_real/table_vs_$tag.md
  OMP_NUM_THREADS=1 .venv/bin/python tools/scass_table.py --out output/round3_snr_surrogate --reference "$ref" \
     --set "surrogate -5 dB=$G/scass_mixtures/test_snr_m5" --set "surrogate 0 dB=$G/scass_mixtures/test" \
     --set "surrogate +5 dB=$G/scass_mixtures/test_snr_p5" "${S[@]}"
  cp output/round3_snr_surrogate/table.md output/round3_snr_surrogate/table_vs_$tag.md
done
echo ROUND3B_DONE
