#!/usr/bin/env bash
# One whole-network round of ds2-large on a lent GPU host, inside a single device command:
# a fresh synthetic corpus built on the host's CPU cores, then training from the shipped weights
# until a wall-clock deadline, then the mean of the last checkpoints handed back as fp16 parts.
#
# On the Debian host, once (see README.md here for the untracked checkpoints):
#   ROUND=1 bash tools/gpu_host/bundle.sh
# On the GPU host, in the repo root, with .gpu_bundle carried:
#   BACK=$OUT BUDGET=555 bash tools/gpu_host/round.sh      # session 35: 540 s, 1439 steps
# Back on the Debian host: cat BACK/w.part* > DIR/model.safetensors; cp BACK/config.json DIR/.
#
# BUDGET (seconds from the start of this script) bounds everything; the training clock is what
# is left of it after the corpus, less END_MARGIN for the mean and the copy. DRY=1 runs it here
# (no bundle set-up, CPU) as a check of the plumbing: tiny corpus, a few steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
BACK=${BACK:-back}
BUDGET=${BUDGET:-540}
END_MARGIN=${END_MARGIN:-45}
HOURS=${HOURS:-36}                 # the fresh corpus
SYNTH_SECONDS=${SYNTH_SECONDS:-150}  # the corpus stops growing after this long
SHORT_HOURS=${SHORT_HOURS:-6}      # short utterances (gpu_short_corpus); 0: none
SHORT_SECONDS=${SHORT_SECONDS:-45}
FLITE_F0=${FLITE_F0-95 135 190}   # flite's voices also at these mean F0s (train.synth --flite-f0); "": none
SEED=${SEED:-29}
LR=${LR:-3e-4}
JOBS=${JOBS:-$(nproc)}
WORKERS=${WORKERS:-$(($(nproc) > 2 ? $(nproc) - 1 : 1))}
read -r -a TRAIN_EXTRA <<< "${TRAIN_ARGS:-}"   # more train.train flags (the last one wins)
D=data/synth_gpu
EXP=exp/gpu_round
mkdir -p "$BACK"
say() { echo "[$(($(date +%s) - T0)) s] $*"; }

if [ "${DRY:-0}" = 1 ]; then
  tts() { "$@"; }
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  # shellcheck source=/dev/null
  source tools/gpu_host/setup.sh || exit 1
  [ -d .gpu_bundle/pico ] && export PYTHONPATH=$PWD/.gpu_bundle/pico:$PYTHONPATH
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
command -v python >/dev/null || python() { python3 "$@"; }
# shellcheck source=train/recipes/common.sh
source train/recipes/common.sh   # has_engine; its defaults leave the settings above alone
# shellcheck source=train/recipes/gpu_round.sh
source train/recipes/gpu_round.sh
GPU_SYNTH_ARGS=(--sentences .gpu_bundle/sentences.jsonl.gz)
# shellcheck disable=SC2206  # FLITE_F0 is a list of numbers, split on purpose
GPU_SYNTH_ARGS+=(${FLITE_F0:+--flite-f0 $FLITE_F0})
# The evaluation sets whose transcripts no short utterance may be (bundle.sh copies them).
GPU_EXCLUDE=()
for f in .gpu_bundle/exclude/*.jsonl; do [ -f "$f" ] && GPU_EXCLUDE+=("$f"); done
GPU_MORE=()

say "corpus: $HOURS h, seed $SEED, for at most $SYNTH_SECONDS s"
gpu_corpus "$D" "$SEED" 0 "$JOBS" "$HOURS" tts timeout "$SYNTH_SECONDS" > "$BACK/synth.log" 2>&1
say "corpus done (exit $?): $(wc -l < "$D/train.jsonl") train clips"
reap() { pkill -f "train.synth" 2>/dev/null; }   # a worker that outlived the timeout takes a core
reap
if [ "$SHORT_HOURS" != 0 ]; then
  say "short utterances: $SHORT_HOURS h, excluding ${GPU_EXCLUDE[*]:-nothing}"
  gpu_short_corpus "${D}_short" "$((SEED + 1))" 0 "$JOBS" "$SHORT_HOURS" \
    tts timeout "$SHORT_SECONDS" >> "$BACK/synth.log" 2>&1
  say "short corpus done (exit $?): $(wc -l < "${D}_short/train.jsonl") clips"
  reap
  GPU_MORE=("${D}_short/train.jsonl")
fi
python3 -m train.manifest "$D/train.jsonl" "$D/natural.jsonl" ${GPU_MORE[@]+"${GPU_MORE[@]}"}
if [ "${DRY:-0}" != 1 ] && command -v nvidia-smi >/dev/null; then
  # GPU load during training, for the log: is the round bound by the GPU or by the feature workers?
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 20 \
    > "$BACK/smi.log" 2>&1 &
  SMI=$!
fi

left=$((T0 + BUDGET - END_MARGIN - $(date +%s)))
say "training for $left s"
gpu_train "$EXP" .gpu_bundle/init "$D" "$((2040 + SEED))" "$WORKERS" \
  --max-hours "$(python3 -c "print(max($left, 30) / 3600)")" --lr "$LR" \
  --warmup-steps "${WARMUP:-100}" --hold-fraction "${HOLD:-0.25}" \
  --save-every-steps "${SAVE_EVERY:-150}" ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"} \
  > "$BACK/train.log" 2>&1
say "training done (exit $?)"
[ -n "${SMI:-}" ] && kill "$SMI" 2>/dev/null
cp "$EXP/log.jsonl" "$BACK/log.jsonl"
[ -f "$D/corpus.json" ] && python3 -c "import json; d = json.load(open('$D/corpus.json'));\
 d.pop('train_voices', None); json.dump(d, open('$BACK/corpus.json', 'w'), indent=1)"
python3 -m train.average --exp "$EXP" --last 3 --out "$EXP/avg" > "$BACK/average.log" 2>&1 ||
  exit 1
python3 tools/gpu_host/snapshot.py "$EXP/avg" "$BACK"
# At most 8 files go back: the 4 weight parts, config.json, log.jsonl, corpus.json and logs.txt.
for f in synth average train smi; do
  [ -f "$BACK/$f.log" ] || continue
  echo "== $f.log (tail)"
  tail -c 15000 "$BACK/$f.log" | tr '\r' '\n' | tail -n 120
done > "$BACK/logs.txt" && rm -f "$BACK"/{synth,average,train,smi}.log
say "done"
