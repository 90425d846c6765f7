# Sourced after common.sh (has_engine): the lent-GPU round of ds2-large (session 35), shared by
# ds2_large_synth.sh's gpu stage and tools/gpu_host/round.sh (which ran it on one H200 inside a
# single device command).

# gpu_engines: GPU_ENGINES, the rounds' engines (espeak, flite, festival and, where py-nanotts is
# installed, SVOX Pico), probed once for both corpora.
gpu_engines() {
  [ -n "${GPU_ENGINES:-}" ] && return 0
  GPU_ENGINES=espeak,flite,festival
  if has_engine pico; then
    GPU_ENGINES+=,pico
  else
    echo "warning: the GPU round's corpus has no Pico: pip install -r train/requirements-tts.txt" >&2
  fi
}

# gpu_corpus DIR SEED HELDOUT_SEED JOBS HOURS [PREFIX...]: a fresh corpus of HOURS of
# GPU_ENGINES' speech, 1 % of it for validation, with the talkers that HELDOUT_SEED's corpus holds
# out kept out; built by `PREFIX python -m train.synth ... GPU_SYNTH_ARGS...` (PREFIX: e.g. a
# wrapper putting carried engines on PATH, and a timeout). Then DIR/natural.jsonl: its flite and
# festival clips, which the round hears twice. Returns train.synth's status.
gpu_corpus() {
  local d=$1 seed=$2 heldout=$3 jobs=$4 hours=$5 rc=0
  shift 5
  gpu_engines
  "$@" python -m train.synth --out "$d" --hours "$hours" --seed "$seed" --heldout-seed "$heldout" \
    --valid-fraction 0.01 --test-fraction 0 --jobs "$jobs" --engines "$GPU_ENGINES" --save-every 10 \
    ${GPU_SYNTH_ARGS[@]+"${GPU_SYNTH_ARGS[@]}"} || rc=$?
  python -m train.manifest "$d/train.jsonl" --engines flite,festival --out "$d/natural.jsonl" ||
    return 1
  return "$rc"
}

# gpu_short_corpus DIR SEED HELDOUT_SEED JOBS HOURS [PREFIX...]: HOURS of short utterances
# (train.synth --text short: words, phrases, spelled letters, numbers) by the same engines, all
# for training, with the talkers of HELDOUT_SEED's corpus kept out and no transcript of the
# manifests in GPU_EXCLUDE (evaluation sets) used. Session 35's round had none, and its mean lost
# 2 points of CER on short_unseen_voice. Returns train.synth's status.
gpu_short_corpus() {
  local d=$1 seed=$2 heldout=$3 jobs=$4 hours=$5
  shift 5
  gpu_engines
  "$@" python -m train.synth --out "$d" --text short --hours "$hours" --seed "$seed" \
    --heldout-seed "$heldout" --valid-fraction 0 --test-fraction 0 --jobs "$jobs" \
    --engines "$GPU_ENGINES" --save-every 10 \
    ${GPU_EXCLUDE[@]+--exclude "${GPU_EXCLUDE[@]}"} ${GPU_SYNTH_ARGS[@]+"${GPU_SYNTH_ARGS[@]}"}
}

# gpu_train EXP INIT DIR SEED WORKERS ARGS...: the whole network from INIT on gpu_corpus's DIR
# (its flite and festival clips twice) and the manifests in GPU_MORE (e.g. gpu_short_corpus's)
# in bf16: peak lr 3e-4 after 100 warm-up steps, held for a quarter of the clock, cosine to
# 5 %; up to 1600 padded audio-seconds and 256 clips a step; speed changes 0.8-1.2x on half the
# clips; validation on 300 of DIR's clips every 1.5 min; a step-N checkpoint every 150 steps.
# ARGS (the clock: --max-hours H) go last and win.
gpu_train() {
  local exp=$1 init=$2 d=$3 seed=$4 workers=$5
  shift 5
  python -m train.train --config train/configs/ds2_large.toml \
    --train "$d/train.jsonl" "$d/natural.jsonl" ${GPU_MORE[@]+"${GPU_MORE[@]}"} \
    --valid "$d/valid.jsonl" \
    --eval-max-utterances 300 --exp "$exp" --init-from "$init" --resume \
    --lr 3e-4 --warmup-steps 100 --hold-fraction 0.25 --min-lr-ratio 0.05 --no-sortagrad \
    --speed-prob 0.5 --speed-min 0.8 --speed-max 1.2 --num-workers "$workers" \
    --eval-every-minutes 1.5 --eval-every-steps 0 --checkpoint-minutes 1.5 \
    --save-every-steps 150 --keep-checkpoints 4 --seed "$seed" --log-every 25 "$@"
}
