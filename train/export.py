"""Turn a training checkpoint into a Hub-ready model folder, with a model card.

    python -m train.export --checkpoint exp/small/checkpoints/best --out checkpoints/ds2-small \\
        --lm exp/lm --tune exp/tune/tune.json --eval exp/eval/results.json [--half] \\
        [--push org/ds2-small]

The folder holds::

    config.json          model, features, vocab, "decoder" (lexicon, LM, tuned weights), "training"
    model.safetensors    weights (float16 with --half: half the size; N-bit integers with a
                         scale per row with --quantize N: N/32 of it; loaded back as float32)
    lexicon.txt, lm.arpa (or lm.bin)   the word LM for beam search, when --lm is given
    loss.png             the training curves (found beside the experiment when not given)
    history.png          with --history-png: every training stage's curves end to end
    eval_results.json    the evaluation the card's tables come from, with wer.png and voices.png
    README.md            the model card: Hub YAML front matter (license, tags, model-index with
                         WER/CER), data, hours, steps, hardware, training time, results, usage,
                         and the validation CER/WER by step from the run's log.jsonl

The optimizer and trainer state (``trainer_state.*``) stay behind: a model folder holds what
inference needs and nothing else. ``--test MANIFEST`` evaluates the exported folder on the spot
instead of reading ``--eval``; with ``--log-probs DIR`` the network's output is kept, so exporting
the same weights again (another LM, new notes) decodes without running the network.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ds2.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_write_bytes,
    dequantize_weights,
    fine_tuned_from,
    hardware_label,
    is_number,
    load_folder,
    quantize_weights,
    read_config,
    safetensors_bytes,
    training_stages,
    training_totals,
)
from ds2.errors import CheckpointError, DS2Error
from train.checkpointing import lineage
from train.evaluate import VOICES_PNG, WER_PNG, plot_by_group, plot_results
from train.plots import audio_hours_seen, peak_lr, read_log

LICENSE = "mit"
LOSS_PNG = "loss.png"
HISTORY_PNG = "history.png"
EVAL_JSON = "eval_results.json"
CARD_NAME = "README.md"
# Decoder weights when nothing was tuned: flashlight's usual starting point.
DEFAULT_LM_WEIGHT = 0.8
DEFAULT_WORD_SCORE = 0.0


# ------------------------------------------------------------------------------------------
# Weights and files


def export_weights(
    src: Path,
    dst: Path,
    half: bool = False,
    quantize: int | None = None,
    quantize_finer: Sequence[str] = (),
) -> dict:
    """Copy ``src`` safetensors weights to ``dst``; with ``half`` floating tensors become fp16,
    with ``quantize=N`` weight matrices become N-bit integers with a scale per row
    (:func:`ds2.checkpoint.quantize_weights`, N/32 of float32's size), those named like
    ``quantize_finer`` N+1-bit ones (dtype ``intN+``).

    Integer buffers (BatchNorm's ``num_batches_tracked``) keep their dtype. ``load_folder``
    turns fp16 and quantized tensors back into the float32 model, which runs in float32.
    With neither option the file is copied byte for byte, so re-exporting a model folder (with
    another LM or a new card) keeps the weights that were evaluated; a model folder's fp16 or
    quantized weights are converted from the float32 values they stand for.
    Returns ``{"dtype", "bytes", "tensors"}``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    if half and quantize:
        raise DS2Error("choose float16 or quantized weights, not both")
    if quantize_finer and not quantize:
        raise DS2Error("finer quantized weights need quantized weights (--quantize BITS)")
    try:
        if not half and not quantize:
            with safe_open(str(src), "pt") as f:  # the header alone: the bytes are copied
                # every export notes its dtype; a training checkpoint's weights are float32
                dtype, tensors = (f.metadata() or {}).get("dtype", "float32"), len(f.keys())
            shutil.copyfile(src, dst)
            return {"dtype": dtype, "bytes": dst.stat().st_size, "tensors": tensors}
        state = load_file(str(src))
    except Exception as e:
        raise CheckpointError(f"{src} is corrupt or not safetensors ({e})") from None
    state = dequantize_weights(state)
    if quantize:
        try:
            state = quantize_weights(state, quantize, quantize_finer)
        except ValueError as e:
            raise DS2Error(f"cannot quantize the weights: {e}") from None
    else:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    dtype = f"int{quantize}{'+' if quantize_finer else ''}" if quantize else "float16"
    atomic_write_bytes(dst, safetensors_bytes(state, {"format": "pt", "dtype": dtype}))
    return {"dtype": dtype, "bytes": dst.stat().st_size, "tensors": len(state)}


def _find_lm(lm: Path) -> tuple[Path, Path | None, dict]:
    """(LM file, lexicon or None, lm.json stats) from an LM file or a train.lm output folder."""
    stats = {}
    if lm.is_dir():
        folder = lm
        found = [lm / n for n in ("lm.bin", "lm.arpa") if (lm / n).is_file()]
        if not found:
            raise DS2Error(f"the LM folder {lm} holds no lm.bin or lm.arpa")
        lm = found[0]
    else:
        folder = lm.parent
    if not lm.is_file():
        raise DS2Error(f"LM file not found: {lm}")
    lexicon = folder / "lexicon.txt"
    if (folder / "lm.json").is_file():
        stats = json.loads((folder / "lm.json").read_text())
    return lm, lexicon if lexicon.is_file() else None, stats


def _find_in_run(checkpoint: Path, filename: str) -> Path | None:
    """EXP/filename for a checkpoint at EXP/checkpoints/NAME or EXP/NAME (an average)."""
    for p in (checkpoint, checkpoint.parent.parent, checkpoint.parent):
        if (p / filename).is_file():
            return p / filename
    return None


def _training_figures(checkpoint: Path, loss_png, history_png) -> dict[str, Path]:
    """The card's training figures, {name in the folder: source}: the loss curve (``loss_png``,
    else the run's own) and the stage history (``history_png``, only when given). A named
    figure that is missing fails here, before anything is written."""
    loss = Path(loss_png) if loss_png else _find_in_run(checkpoint, LOSS_PNG)
    history = Path(history_png) if history_png is not None else None
    figures = {}
    for dest, src, what in (
        (LOSS_PNG, loss, "loss curve"),
        (HISTORY_PNG, history, "training history figure"),
    ):
        if src is None:
            continue
        if not src.is_file():
            raise DS2Error(f"{what} not found: {src}")
        figures[dest] = src
    return figures


def _with_audio_seen(training: dict, events: list[dict]) -> dict:
    """Fill ``audio_hours_seen`` (and epochs from it) for checkpoints from before the trainer
    counted it, estimating from the run's log ``events``; the old epochs were a position in the
    epoch, which over-counts batches skipped on a resume into a grown manifest."""
    if training.get("audio_hours_seen") is not None:
        return training
    seen = audio_hours_seen(events)
    if not seen:
        return training
    out = {**training, "audio_hours_seen": round(seen, 2), "audio_hours_seen_estimated": True}
    if training.get("train_hours"):
        out["epochs"] = round(seen / training["train_hours"], 3)
    return out


def _with_peak_lr(training: dict, events: list[dict]) -> dict:
    """Fill ``peak_lr`` for checkpoints from before the trainer kept it, from the run's log
    ``events`` (the stage table would show the last --lr)."""
    if is_number(training.get("peak_lr")):
        return training
    peak = peak_lr(events)
    return {**training, "peak_lr": peak} if peak else training


def _with_valid_history(training: dict, events: list[dict], every: int = 500) -> dict:
    """Add ``valid_history``: the trainer's validation CER/WER every ``every`` steps and at the
    exported step, from the run's log ``events``."""
    by_step = {
        e["step"]: e  # a step validated twice (a resume) keeps its last
        for e in events
        if e.get("event") == "valid" and e.get("step", 0) > 0
    }
    if not by_step:
        return training
    last = max(by_step)
    history = [
        {"step": s, "cer": round(by_step[s]["cer"], 4), "wer": round(by_step[s]["wer"], 4)}
        for s in sorted(by_step)
        if s % every == 0 or s == last
    ]
    return {**training, "valid_history": history}


def _decoder_weights(args_weight, args_score, tune_json, source_decoder) -> tuple[dict, str]:
    """(lm_weight/word_score, where they came from): flags, then tune.json, then the source."""
    if tune_json is not None:
        try:
            best = json.loads(Path(tune_json).read_text())["best"]
            w, s = best["lm_weight"], best["word_score"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DS2Error(f"{tune_json} is not a train.tune_lm result ({e})") from None
        origin = "tuned on the validation set with `python -m train.tune_lm`"
    elif "lm_weight" in source_decoder:
        w = source_decoder["lm_weight"]
        s = source_decoder.get("word_score", DEFAULT_WORD_SCORE)
        origin = "from the checkpoint"
    else:
        w, s, origin = DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE, "untuned defaults"
    if args_weight is not None or args_score is not None:
        origin = "given"
    w = args_weight if args_weight is not None else w
    s = args_score if args_score is not None else s
    return {"lm_weight": float(w), "word_score": float(s)}, origin


# ------------------------------------------------------------------------------------------
# Model card


def _fmt_hours(h) -> str:
    if h is None:
        return "unknown"
    return f"{h:.2f} h" if h >= 1 else f"{60 * h:.0f} min"


def _stages_section(training: dict, stages: list[dict]) -> list[str]:
    """A table of every run behind a fine-tuned model (``stages``: its
    :func:`training_stages`), with their sums; nothing for one run."""
    if len(stages) < 2:
        return []

    def cell(value, fmt="{}"):
        return fmt.format(value) if value is not None else "?"

    lines = [
        "",
        "The weights were trained in stages, each starting from the one before:",
        "",
        "| stage | started from | steps | time | audio seen | corpus | peak lr | precision |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, s in enumerate(stages, 1):
        start = f"`{s['init_from']}`" if s.get("init_from") else "scratch"
        lines.append(
            f"| {i} | {start} "
            f"| {cell(s.get('steps'), '{:,}')} | {_fmt_hours(s.get('elapsed_hours'))} "
            f"| {_fmt_hours(s.get('audio_hours_seen'))} | {_fmt_hours(s.get('train_hours'))} "
            f"| {cell(s.get('lr'), '{:g}')} | {cell(s.get('precision'))} |"
        )
    t = training_totals(training, stages)
    lines.append(
        f"| **all** | | **{cell(t.get('steps'), '{:,}')}** "
        f"| **{_fmt_hours(t.get('elapsed_hours'))}** "
        f"| **{_fmt_hours(t.get('audio_hours_seen'))}** | | | |"
    )
    if not t["complete"]:
        lines += [
            "",
            f"Stage 1 started from `{stages[0]['init_from']}`, whose training is not recorded "
            "here; the sums cover the stages above only.",
        ]
    return lines


def _card_data(name: str, results: dict | None, license: str):
    from huggingface_hub import EvalResult, ModelCardData

    evals = []
    for set_name, s in (results or {}).get("sets", {}).items():
        for mode, r in s["modes"].items():
            for metric in ("wer", "cer"):
                evals.append(
                    EvalResult(
                        task_type="automatic-speech-recognition",
                        task_name="Speech Recognition",
                        dataset_type=set_name,
                        dataset_name=set_name,
                        dataset_split="test",
                        metric_type=metric,
                        metric_value=round(100 * r[metric], 2),
                        metric_name=f"{metric.upper()} ({mode})",
                    )
                )
    return ModelCardData(
        language="en",
        license=license,
        library_name="ds2",
        pipeline_tag="automatic-speech-recognition",
        tags=["speech-recognition", "ctc", "deepspeech2"],
        model_name=name,
        eval_results=evals or None,
    )


def model_card(
    folder: Path,
    name: str,
    repo_id: str | None = None,
    results: dict | None = None,
    lm_stats: dict | None = None,
    weights_origin: str = "",
    license: str = LICENSE,
    folder_label: str | None = None,
    notes: str = "",
) -> str:
    """The README.md of an exported ``folder`` (its config.json must be written already).

    folder_label : how the card names the folder in its upload example (default its name).
    notes : Markdown for a "Training notes" section (the run's history, in the trainer's words).
    """
    from train.evaluate import results_by_group, results_table

    cfg = read_config(folder)
    model = cfg["model"]
    training = cfg.get("training") or {}
    decoder = cfg.get("decoder") or {}
    loaded = load_folder(folder)
    n_params = loaded.model.num_parameters()
    repo = repo_id or f"YOUR-ORG/{name}"
    label = folder_label or folder.name

    rnn = f"{model['rnn_layers']} x {'bi' if model.get('bidirectional', True) else ''}" + (
        f"{model['rnn_type'].upper()} ({model['rnn_hidden']} per direction)"
    )
    feats = cfg["features"]
    lines = [
        f"# {name}",
        "",
        f"A [DeepSpeech2](https://arxiv.org/abs/1512.02595) speech recognizer for English, "
        f"{n_params / 1e6:.1f} M parameters: {len(model['convs'])} conv layers "
        f"(BatchNorm, Hardtanh), {rnn}, and a linear CTC head over {len(cfg['vocab'])} symbols "
        f"(blank, space, apostrophe, a-z). Input: {feats['n_fft'] // 2 + 1}-bin log "
        f"spectrogram, {1000 * feats['hop_length'] / feats['sample_rate']:.0f} ms hop, "
        f"{feats['sample_rate'] // 1000} kHz mono audio; one output frame every "
        f"{1000 * feats['hop_length'] / feats['sample_rate'] * loaded.model.time_stride:.0f} ms.",
        "",
        "## Usage",
        "",
        "```python",
        "import ds2",
        "",
        f'model = ds2.load_model("{repo}")',
        'result = ds2.transcribe(model, "clip.wav", decoder="beam")',
        "print(result.text)",
        "for w in result.words:",
        '    print(f"{w.start:6.2f} {w.end:6.2f} {w.confidence:.2f} {w.word}")',
        "```",
        "",
        "or from the command line: "
        f"`python -m ds2 transcribe clip.wav --model {repo} --decoder beam`.",
    ]

    lines += ["", "## Results", ""]
    if results and results.get("sets"):
        d = results.get("decoding", {})
        lines += [results_table(results), ""]
        desc = f"Beam width {d.get('beam_width', '?')}"
        if "lm_weight" in d:
            desc += f"; beam_lm uses lm_weight {d['lm_weight']} and word_score {d['word_score']}"
        lines.append(
            desc + ". WER and CER in %, summed over each set (`python -m train.evaluate`)."
        )
        if (folder / WER_PNG).is_file():
            lines += ["", f"![WER by set and decoding mode]({WER_PNG})"]
        by_group = results_by_group(results)
        if by_group:
            lines += [
                "",
                "### By voice",
                "",
                "The same evaluation per voice (or engine), where a set names them:",
                "",
                by_group,
            ]
            if (folder / VOICES_PNG).is_file():
                lines += ["", f"![CER by voice]({VOICES_PNG})"]
        lines += _worst_section(results)
    else:
        lines.append("Not evaluated yet (export with `--eval results.json` or `--test MANIFEST`).")

    lines += ["", "## Training", ""]
    manifests = training.get("train_manifests") or []
    facts = [
        ("training data", _manifest_list(manifests)),
        *_corpus_facts(manifests),
        ("hours of audio", _fmt_hours(training.get("train_hours"))),
        ("utterances", training.get("train_utterances", "unknown")),
        ("optimizer steps", training.get("steps", "unknown")),
        (
            "audio seen in training",
            _fmt_hours(training.get("audio_hours_seen"))
            + (" (estimated from the log)" if training.get("audio_hours_seen_estimated") else ""),
        ),
        ("epochs", training.get("epochs", "unknown")),
        ("training time", _fmt_hours(training.get("elapsed_hours"))),
        ("hardware", hardware_label(training.get("hardware"), full=True)),
        ("precision", training.get("precision", "unknown")),
    ]
    if training.get("world_size", 1) and training.get("world_size", 1) > 1:
        facts.append(("processes", training["world_size"]))
    if training.get("best_valid_cer") is not None:
        facts.append(
            (
                "best validation CER" + (" (last run)" if training.get("averaged_from") else ""),
                f"{100 * training['best_valid_cer']:.2f} % at step {training.get('best_step')}",
            )
        )
    if training.get("averaged_from"):  # a mean across runs (train.average --mixed)
        sources = training["averaged_from"]
        parts = [
            f"`{s.get('folder')}` (step {s.get('step')}"
            + (f", trained from `{s['init_from']}`)" if s.get("init_from") else ")")
            for s in sources
        ]
        facts.append(("weights", f"mean of {len(sources)} runs' weights: " + ", ".join(parts)))
    elif training.get("averaged_steps"):
        steps = training["averaged_steps"]
        facts.append(
            ("weights", f"mean of {len(steps)} checkpoints (steps {', '.join(map(str, steps))})")
        )
    spec = fine_tuned_from(training)
    if spec:
        facts.append(("initialised from", f"`{spec}` (fine-tuned: the steps above are its own)"))
    stages = training_stages(training)
    if len(stages) > 1:
        # The facts are the run that wrote these weights; the stage table after them sums all.
        lines += ["The last training stage, the one that wrote these weights:", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts]
    lines += _stages_section(training, stages)
    history = training.get("valid_history") or []
    if history:
        lines += [
            "",
            "Validation during training (the trainer's greedy decoding of a fixed subset of the "
            "validation set), in %:",
            "",
            "| step | " + " | ".join(str(h["step"]) for h in history) + " |",
            "|---|" + "---:|" * len(history),
            "| CER | " + " | ".join(f"{100 * h['cer']:.1f}" for h in history) + " |",
            "| WER | " + " | ".join(f"{100 * h['wer']:.1f}" for h in history) + " |",
        ]
    if (folder / LOSS_PNG).is_file():
        lines += ["", f"![training curves]({LOSS_PNG})"]
    if (folder / HISTORY_PNG).is_file():
        lines += [
            "",
            "Every stage's curves end to end (each stage validates on its own set):",
            "",
            f"![every training stage]({HISTORY_PNG})",
        ]
    lines += [
        "",
        "Rebuild it with the recipe in the ds2 repository (`train/train.py`); the full training "
        'configuration is in `config.json["training"]["config"]`.',
    ]
    if notes.strip():
        lines += ["", "### Training notes", "", notes.strip()]

    if decoder.get("lm"):
        s = lm_stats or {}
        lines += ["", "## Language model", ""]
        desc = f"`{decoder['lm']}`"
        if s.get("order"):
            desc += (
                f": a {s['order']}-gram modified Kneser-Ney model (`python -m train.lm`) over "
                f"{s.get('vocab_size', '?')} words, n-grams per order {s.get('ngrams')}, "
                f"built from {s.get('sentences', '?')} training sentences "
                f"({s.get('words', '?')} words)"
            )
            if s.get("dev"):
                desc += (
                    f"; validation perplexity {s['dev']['perplexity']}, "
                    f"OOV rate {100 * s['dev']['oov_rate']:.2f} %"
                )
            if str(decoder["lm"]).endswith(".bin") and s.get("binary") and s.get("arpa_bytes"):
                bits = s.get("binary_quantize")
                desc += (
                    "; stored as a KenLM trie ("
                    + (f"{bits}-bit quantised probabilities and backoffs" if bits else "exact")
                    + f") in place of its {s['arpa_bytes'] / 1e6:.1f}-MB ARPA file"
                )
        lines += [
            desc + ".",
            "",
            f"`{decoder.get('lexicon')}` spells each LM word for the lexicon-constrained beam "
            f"search. LM weight {decoder.get('lm_weight')} and word score "
            f"{decoder.get('word_score')} ({weights_origin or 'see config.json'}) are the "
            "defaults `ds2.transcribe` uses; override them with `lm_weight=` / `word_score=`.",
        ]

    lines += [
        "",
        "## Limitations",
        "",
        "English only, lower-case letters and apostrophes: no punctuation, casing or digits "
        "(numbers come out as words). The model knows the voices, vocabulary and recording "
        "conditions of its training data listed above; on other speech expect higher error "
        "rates than the table shows. Always check transcripts before relying on them.",
        "",
        "## Files",
        "",
        "| file | size |",
        "|---|---:|",
    ]
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != CARD_NAME:
            lines.append(f"| `{p.name}` | {_size(p.stat().st_size)} |")
    lines += [
        "",
        "## Publishing",
        "",
        "This folder is a complete Hub model repository. To push it:",
        "",
        "```python",
        "from huggingface_hub import HfApi",
        "",
        "api = HfApi()  # token from `hf auth login` or $HF_TOKEN",
        f'api.create_repo("{repo}", exist_ok=True)',
        "api.upload_folder(",
        f'    folder_path="{label}",',
        f'    repo_id="{repo}",',
        ")",
        "```",
        "",
        f"or `python -m train.export --checkpoint CKPT --out {label} --push {repo}`.",
    ]
    card = _card_data(name, results, license)
    return f"---\n{card.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"


def _worst_section(results: dict, n: int = 5) -> list[str]:
    """The ``n`` worst utterances per set, for greedy and the best beam mode: what goes wrong."""
    out = ["", "### Worst errors", ""]
    out.append(
        "Per set, the utterances with the most word errors "
        "(`[ref->hyp]` substitution, `[-ref]` deletion, `[+hyp]` insertion):"
    )
    for set_name, s in results["sets"].items():
        modes = s.get("modes", {})
        shown = [m for m in ("greedy", "beam_lm") if m in modes] or list(modes)[:1]
        for mode in shown:
            worst = modes[mode].get("worst") or []
            if not worst:
                continue
            out += ["", f"**{set_name}, {mode}**", ""]
            for w in worst[:n]:
                out.append(f"- `{w['id']}` ({w['errors']} errors): {w['diff']}")
    return out if len(out) > 4 else []


def _manifest_list(manifests) -> str:
    """``a/train.jsonl``, ``b/x.jsonl`` x3: each manifest once, with its folder and repeat count."""
    counts = Counter("/".join(Path(m).parts[-2:]) for m in manifests)  # first-seen order
    return ", ".join(f"`{k}`" + (f" x{n}" if n > 1 else "") for k, n in counts.items()) or "unknown"


def _corpus_facts(manifests) -> list[tuple[str, str]]:
    """Voices and engines from a synthetic corpus' ``corpus.json`` beside its manifest."""
    for m in manifests:
        path = Path(m).parent / "corpus.json"
        try:
            corpus = json.loads(path.read_text())
            train = corpus["splits"]["train"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        engines = ", ".join(
            f"{e} {h:.1f} h" for e, h in sorted(train.get("hours_by_engine", {}).items())
        )
        voices = f"{train.get('speakers', '?')}" + (f" ({engines})" if engines else "")
        return [
            ("corpus", f"synthetic (`python -m train.synth`, seed {corpus.get('seed', '?')})"),
            ("training voices", voices),
        ]
    return []


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


# ------------------------------------------------------------------------------------------
# Export and push


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    lm: str | os.PathLike | None = None,
    lm_weight: float | None = None,
    word_score: float | None = None,
    tune: str | os.PathLike | None = None,
    eval_results: str | os.PathLike | dict | None = None,
    test_manifests=None,
    log_probs_dir: str | os.PathLike | None = None,
    loss_png: str | os.PathLike | None = None,
    history_png: str | os.PathLike | None = None,
    half: bool = False,
    quantize: int | None = None,
    quantize_finer: Sequence[str] = (),
    repo_id: str | None = None,
    license: str = LICENSE,
    overwrite: bool = False,
    notes: str = "",
) -> Path:
    """Write the Hub-ready folder ``out`` from the training checkpoint folder ``checkpoint``.

    The folder is assembled in a temporary sibling and renamed into place, so a failed export
    leaves no half-written model. See the module docstring for what goes in.
    ``log_probs_dir`` keeps the network's output on ``test_manifests`` there
    (:func:`train.evaluate.evaluate`'s cache): exporting the same weights again, with another LM
    or card, decodes without running the network.
    """
    checkpoint = Path(checkpoint)
    out = Path(out)
    load_folder(checkpoint)  # a broken checkpoint fails here, before anything is written
    src_cfg = read_config(checkpoint)
    name = name or out.name
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DS2Error(f"{out} exists and is not empty; pass --overwrite to replace it")
    figures = _training_figures(checkpoint, loss_png, history_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-{out.name}-"))
    try:
        weights = export_weights(
            checkpoint / WEIGHTS_NAME, tmp / WEIGHTS_NAME, half, quantize, quantize_finer
        )
        cfg = {k: v for k, v in src_cfg.items() if k != "decoder"}
        log_path = _find_in_run(checkpoint, "log.jsonl")
        # the run's log, read once, up to the checkpoint's step: later events are not its own
        src_training = src_cfg.get("training") or {}
        events = read_log(log_path, upto=src_training.get("steps")) if log_path else []
        training = _with_audio_seen(src_training, events)
        training = _with_peak_lr(training, events)
        training = _with_valid_history(training, events)
        # the runs before this one; rebuilt for a run from before the trainer kept lineages
        training = {**training, "earlier_stages": lineage(training)[:-1]}
        cfg["training"] = {**training, "exported_weights": weights["dtype"]}

        lm_stats: dict = {}
        origin = ""
        src_decoder = src_cfg.get("decoder") or {}
        if lm is not None or src_decoder.get("lm"):
            if lm is not None:
                lm_file, lexicon, lm_stats = _find_lm(Path(lm))
            else:
                lm_file = checkpoint / src_decoder["lm"]
                lexicon = (
                    checkpoint / src_decoder["lexicon"] if src_decoder.get("lexicon") else None
                )
            shutil.copy2(lm_file, tmp / lm_file.name)
            if lexicon is not None:
                shutil.copy2(lexicon, tmp / "lexicon.txt")
            else:
                from ds2.decoding import arpa_unigrams, is_arpa, write_lexicon

                if not is_arpa(lm_file):
                    raise DS2Error(f"the binary LM {lm_file} has no lexicon.txt beside it")
                write_lexicon(arpa_unigrams(lm_file), tmp / "lexicon.txt")
            weights_cfg, origin = _decoder_weights(lm_weight, word_score, tune, src_decoder)
            cfg["decoder"] = {"lexicon": "lexicon.txt", "lm": lm_file.name, **weights_cfg}
        (tmp / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")

        for dest, src in figures.items():
            shutil.copy2(src, tmp / dest)

        load_folder(tmp)  # the export must load before it replaces anything

        results = None
        if test_manifests:
            from train.evaluate import evaluate

            results = evaluate(
                load_folder(tmp, name=name), test_manifests, log_probs_dir=log_probs_dir
            )
        elif isinstance(eval_results, dict):
            results = eval_results
        elif eval_results is not None:
            path = Path(eval_results)
            if not path.is_file():
                raise DS2Error(f"evaluation results not found: {path}")
            results = json.loads(path.read_text())
        if results is not None:
            results = _as_shipped(results, out)
            (tmp / EVAL_JSON).write_text(json.dumps(results, indent=2) + "\n")
            # drawn from the results that ship, never looked for beside an --eval JSON: a JSON
            # copied alone still gets its figures, and a stale figure cannot ship with new tables
            plot_results(results, tmp / WER_PNG)
            plot_by_group(results, tmp / VOICES_PNG)

        card = model_card(
            tmp, name, repo_id, results, lm_stats, origin, license, str(out), notes=notes
        )
        (tmp / CARD_NAME).write_text(card)
        # mkdtemp makes a private folder; a model folder is meant to be shared
        tmp.chmod(0o755)
        for p in tmp.iterdir():
            p.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _as_shipped(results: dict, out: Path) -> dict:
    """``results`` with the evaluated folder's paths as the exported folder ``out``'s.

    An evaluation runs on a staging folder (or, with ``--test``, on the export's temporary
    one); the results that ship with the model name the folder they ship in, and its LM and
    lexicon there, rather than a path its users do not have.
    """
    results = copy.deepcopy(results)
    model = results.get("model")
    if not isinstance(model, dict):
        return results
    folder = model.get("folder")
    model["folder"] = str(out)
    decoding = results.get("decoding") or {}
    for key in ("lm", "lexicon"):
        p = decoding.get(key)
        if p and folder and Path(p).parent == Path(folder):
            decoding[key] = str(out / Path(p).name)
    return results


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
) -> str:
    """Create the Hub model repo ``repo_id`` if needed and upload ``folder`` to it.

    token : a Hugging Face token with write access; None uses ``hf auth login`` / $HF_TOKEN.
    Returns the URL of the commit.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise CheckpointError(f"{folder} is not a ds2 model folder (no {CONFIG_NAME})")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=commit_message or f"Upload {folder.name} (ds2)",
    )
    return getattr(info, "commit_url", str(info))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Turn a training checkpoint into a Hub-ready model folder with a model card.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--checkpoint", required=True, help="training checkpoint folder")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--name", default=None, help="model name (default: the --out folder's name)")
    ap.add_argument("--lm", default=None, help="train.lm output folder (or an LM file)")
    ap.add_argument("--tune", default=None, help="train.tune_lm's tune.json (best weights)")
    ap.add_argument("--lm-weight", type=float, default=None, help="overrides --tune")
    ap.add_argument("--word-score", type=float, default=None, help="overrides --tune")
    ap.add_argument("--eval", default=None, help="train.evaluate's results.json for the card")
    ap.add_argument("--test", nargs="+", default=None, help="evaluate on these manifests instead")
    ap.add_argument(
        "--log-probs",
        default=None,
        metavar="DIR",
        help="with --test: keep each set's network output in DIR and reuse it when the exported "
        "weights are the same (another LM or card decodes without running the network)",
    )
    ap.add_argument("--loss-png", default=None, help="training curves (default: EXP/loss.png)")
    ap.add_argument(
        "--history-png",
        default=None,
        help="every training stage's curves end to end (python -m train.plots --history)",
    )
    ap.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    ap.add_argument(
        "--quantize",
        type=int,
        metavar="BITS",
        help="store weight matrices as BITS-bit integers (2-8) with a float32 scale per row",
    )
    ap.add_argument(
        "--quantize-finer",
        nargs="+",
        default=[],
        metavar="PREFIX",
        help="with --quantize: the weights whose names start with these take one bit more "
        "(e.g. rnn.weight_hh convs head)",
    )
    ap.add_argument("--notes", default=None, help="Markdown file: the run's history, for the card")
    ap.add_argument("--license", default=LICENSE)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    ap.add_argument("--push", default=None, metavar="REPO_ID", help="upload to this Hub repo")
    ap.add_argument("--private", action="store_true", help="create the Hub repo as private")
    args = ap.parse_args(argv)

    notes = ""
    if args.notes:
        try:
            notes = Path(args.notes).read_text()
        except OSError as e:
            raise SystemExit(f"export: error: cannot read --notes {args.notes}: {e}") from None
    out = export(
        args.checkpoint,
        args.out,
        name=args.name,
        lm=args.lm,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        tune=args.tune,
        eval_results=args.eval,
        test_manifests=args.test,
        log_probs_dir=args.log_probs,
        loss_png=args.loss_png,
        history_png=args.history_png,
        half=args.half,
        quantize=args.quantize,
        quantize_finer=args.quantize_finer,
        repo_id=args.push,
        license=args.license,
        overwrite=args.overwrite,
        notes=notes,
    )
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote {out} ({_size(total)}): {', '.join(sorted(p.name for p in out.iterdir()))}")
    if args.push:
        print(f"pushed: {push_to_hub(out, args.push, private=args.private)}")


if __name__ == "__main__":
    main()
