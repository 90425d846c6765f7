#!/usr/bin/env bash
# Packs what a bare GPU host needs to build the synthetic corpus and train there, when that host
# has Python 3.12 + PyTorch but no Debian TTS packages, no text packages and no network:
#
#   .gpu_bundle/whl/               wheels the host lacks (soundfile, soxr, librosa, jiwer, ...)
#   .gpu_bundle/tts.tar.xz         espeak-ng, flite, festival (+ voices) and sox with their
#                                  libraries and data, relocatable (~28 MB)
#   .gpu_bundle/sentences.jsonl.gz train.text_corpus's sentence list (~3.6 MB), for
#                                  train.synth --sentences
#
# ROUND=1 packs for tools/gpu_host/round.sh instead, within the device tool's 64 MiB: only the
# wheels training imports, plus
#   .gpu_bundle/pico/              py-nanotts (SVOX Pico) with its English voices only
#   .gpu_bundle/init/              the shipped ds2-large-synth weights to start from
#   .gpu_bundle/exclude/           evaluation manifests no short utterance may copy
#
# Run on a Debian/Ubuntu host with the packages of train/setup_tts.sh installed, in the repo root:
#   [ROUND=1] bash tools/gpu_host/bundle.sh [PYTHON_VERSION]      (default 3.12, the GPU host's)
# Then copy the repo with .gpu_bundle to the GPU host and run tools/gpu_host/setup.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYV=${1:-3.12}
OUT=.gpu_bundle
rm -rf "$OUT/whl" && mkdir -p "$OUT/whl"   # the wheels of this mode alone

platforms=()
for p in manylinux_2_17 manylinux_2_24 manylinux_2_27 manylinux_2_28 manylinux_2_31 \
         manylinux_2_34 manylinux_2_35 manylinux2014 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
# The pinned requirements the host lacks (it has torch, numpy, safetensors, ...), and their
# own dependencies that it lacks too.
if [ "${ROUND:-0}" = 1 ]; then
  pins=$(grep -hE '^(soundfile|soxr)==' requirements*.txt)
  deps=(cffi pycparser rapidfuzz)
else
  pins=$(grep -hE '^(soundfile|soxr|librosa|flashlight-text|jiwer)==' requirements*.txt)
  deps=(cffi pycparser audioread pooch decorator platformdirs rapidfuzz standard-aifc standard-sunau)
fi
for pkg in $pins "${deps[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
    --implementation cp "${platforms[@]}" --platform any -d "$OUT/whl" "$pkg"
done

# TTS engines and sox: the binaries, every library they load that is not part of a base system,
# espeak-ng's English data and festival's library (voices, lexicons).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,share/espeak-ng-data}
for b in espeak-ng flite festival sox; do cp -L "$(command -v "$b")" "$stage/bin/"; done
libespeak=$(ldconfig -p | awk '/libespeak-ng.so.1 /{print $NF; exit}')
base='linux-vdso|ld-linux|libc\.so|libm\.so|libstdc\+\+|libgcc_s|libpthread|libdl\.so|librt\.so|libz\.so|liblzma|libzstd|libgomp|libbz2'
for f in "$stage"/bin/* "$libespeak"; do ldd "$f" | awk '$3 ~ /^\// {print $3}'; done |
  sort -u | grep -Ev "$base" | while read -r l; do cp -L "$l" "$stage/lib/"; done
cp -L "$libespeak" "$stage/lib/"
data=$(dirname "$libespeak")/espeak-ng-data
(cd "$data" && cp -r en_dict intonations lang phondata phondata-manifest phonindex phontab voices \
  "$stage/share/espeak-ng-data/")
cp -rL /usr/share/festival "$stage/share/festival"
# Only the voices of train.synth's festival engine (FESTIVAL_VOICES), the one the corpus and the
# rounds speak with: the festvox engine's others (MBROLA's data came along through their
# symlinks) were 36 MB of a 55-MB archive, and the device takes 64 MiB in all.
keep=" $(python3 -c 'from train.synth import FESTIVAL_VOICES as v; print(" ".join(v))') "
for v in "$stage"/share/festival/voices/*/*/; do
  case "$keep" in *" $(basename "$v") "*) ;; *) rm -rf "$v" ;; esac
done
cp /etc/festival.scm "$stage/share/etc-festival.scm"
tar -C "$stage" -cf - . | xz -T0 -6 > "$OUT/tts.tar.xz"

python3 -m train.text_corpus --out data/text >/dev/null   # writes data/text/sentences.jsonl.gz
cp data/text/sentences.jsonl.gz "$OUT/"

if [ "${ROUND:-0}" = 1 ]; then
  pico=$(python3 -c 'import os, py_nanotts; print(os.path.dirname(py_nanotts.__file__))')
  rm -rf "$OUT/pico" && mkdir -p "$OUT/pico" && cp -r "$pico" "$OUT/pico/"
  rm -rf "$OUT"/pico/py_nanotts/{lang/de-*,lang/es-*,lang/fr-*,lang/it-*,*.c,__pycache__}
  mkdir -p "$OUT/init"
  rm -rf "$OUT/exclude" && mkdir -p "$OUT/exclude"   # round.sh's short utterances avoid these
  for f in data/real/real_dev.jsonl data/real/real_asterisk_test.jsonl; do
    [ -f "$f" ] && cp "$f" "$OUT/exclude/"
  done
  [ -f data/synth_short/test_unseen_voice.jsonl ] &&
    cp data/synth_short/test_unseen_voice.jsonl "$OUT/exclude/short_test_unseen_voice.jsonl"
  cp checkpoints/ds2-large-synth/{config.json,model.safetensors} "$OUT/init/"
fi
du -sh "$OUT"/*
# What the device tool will carry: the tracked tree less the folders README.md untracks for the
# session (UNTRACK), plus this bundle; it takes 64 MiB in all.
UNTRACK=${UNTRACK:-checkpoints train/resume docs}
tracked=$(git ls-files -z | grep -zvE "^($(echo "$UNTRACK" | tr ' ' '|'))/" |
  du -cb --files0-from=- | tail -1 | cut -f1)   # one total, however many files
bundle=$(du -sb "$OUT" | cut -f1)
limit=$((64 * 1024 * 1024))
echo "carry: $(((tracked + bundle) / 1048576)) MiB of 64 (tracked less $UNTRACK:" \
  "$((tracked / 1024)) KiB; bundle: $((bundle / 1024)) KiB)"
if [ $((tracked + bundle)) -gt "$limit" ]; then
  echo "bundle.sh: over the device's 64 MiB by $(((tracked + bundle - limit) / 1024)) KiB" >&2
  exit 1
fi
