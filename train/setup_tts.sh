#!/usr/bin/env bash
# Install what the ds2 data pipeline needs from Debian/Ubuntu packages:
#   TTS engines (train.synth), sox (augmentation), text sources (train.text_corpus) and the
#   recordings of the real-speech dev set (train.realspeech).
# Usage: sudo bash train/setup_tts.sh        (as root: installs; otherwise: lists what is missing)
set -euo pipefail

PACKAGES=(
  espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts  # TTS engines
  sox ffmpeg                                                                      # audio tools
  wordnet-base fortunes bible-kjv                                                 # text
  alsa-utils klettres-data ktuberling-data                                        # real speech
  asterisk-core-sounds-en asterisk-core-sounds-en-g722                           # real sentences
)
# Optional voices from Debian's contrib and non-free components (train.synth's opt-in rhvoice,
# mbrola and festvox engines): installed when the apt sources carry those components, otherwise
# named.
NONFREE=(rhvoice rhvoice-english mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
  mbrola-af1 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr1
  mbrola-fr4 mbrola-gr2 mbrola-hu1 mbrola-nl2 mbrola-pl1 mbrola-ro1 mbrola-sw1 mbrola-sw2
  festvox-rablpc16k festvox-don festvox-us1 festvox-us2 festvox-us3 festvox-en1)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

optional=()
for p in "${NONFREE[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    optional+=("$p")
  fi
done

install_optional() {
  [ ${#optional[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "optional (contrib/non-free) voices not installed: ${optional[*]}" >&2
    return 0
  fi
  if apt-get install -y --no-install-recommends "${optional[@]}"; then
    echo "installed: ${optional[*]}"
  else
    echo "optional voices not installed (${optional[*]}): add 'contrib non-free' to the" >&2
    echo "Components of /etc/apt/sources.list.d/debian.sources, apt-get update, and rerun" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "all ${#PACKAGES[@]} packages are installed"
  export DEBIAN_FRONTEND=noninteractive
  install_optional
  exit 0
fi

echo "missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root to install them:  sudo apt-get install -y ${missing[*]}" >&2
  echo "(train.synth skips an engine that is missing; train.text_corpus and" >&2
  echo " train.realspeech skip a missing source)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
echo "installed: ${missing[*]}"
install_optional
