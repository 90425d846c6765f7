#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine:
#   - Debian packages: TTS engines that make test speech (espeak-ng, flite, festival + voices),
#     sox and ffmpeg for audio, chromium for the browser test, and the text/speech data packages
#     the training pipeline reads (wordnet-base, fortunes, bible-kjv, alsa-utils, klettres-data,
#     ktuberling-data);
#   - Python packages: requirements-dev.txt (pinned).
# Run as root, or with sudo available. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
      sox libsox-fmt-all ffmpeg chromium
      wordnet-base fortunes bible-kjv alsa-utils klettres-data ktuberling-data)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup_dev: missing Debian packages: ${missing[*]}" >&2
    echo "setup_dev: run as root or install them with apt-get; tests that need them are skipped" >&2
    SUDO="skip"
  fi
  if [[ $SUDO != skip ]]; then
    echo "setup_dev: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

python -m pip install -q -r requirements-dev.txt
echo "setup_dev: ready"
