#!/usr/bin/env bash
# Debian packages for the surrogate audio corpora: espeak-ng, FluidSynth and a General-MIDI
# SoundFont (the default corpus), and for the broader corpus (--engines espeak,flite,festival
# --all-soundfonts): Flite, Festival with two diphone voices and an HTS voice, and the TimGM6mb
# SoundFont, and sox (decodes the GSM prompts of the real-speech training set, data/real_speech_collect.py
# --set train). Never the MuseScore General SoundFont (reserved, DESIGN §12).
# Installed when missing and running as root; otherwise says what to run. Audio tests that need
# them are skipped when they are absent.
set -u
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || missing+=(timgm6mb-soundfont)
command -v flite >/dev/null 2>&1 || missing+=(flite)
command -v sox >/dev/null 2>&1 || missing+=(sox)
command -v text2wave >/dev/null 2>&1 || missing+=(festival)
[ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
[ -d /usr/share/festival/voices/english/ked_diphone ] || missing+=(festvox-kdlpc16k)
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "warning: apt-get install ${missing[*]} failed; audio corpus generation will not work" >&2; exit 0; }
else
  echo "note: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
fi
exit 0
