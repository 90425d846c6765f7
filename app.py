"""ds2 in the browser: transcribe speech and look at what the model heard and said.

    python app.py                      # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --port 8080 --model runs/exp1/checkpoints/last

The page shows the spectrogram and the per-frame CTC posteriors on one time axis, greedy and
beam transcripts with their differences, the beam n-best, word timings, and subtitles on the
audio player; a second tab transcribes the microphone live. Every result is also a named API
endpoint for ``gradio_client`` (``/transcribe``).

Environment: ``DS2_MODEL`` (default model spec), ``DS2_MODELS`` (more Hub repo ids for the
model list), ``DS2_DEVICE`` (auto/cpu/cuda), ``DS2_MAX_SECONDS`` (longest input, s),
``DS2_MAX_UPLOAD_MB`` (largest upload), ``DS2_CONCURRENCY`` (transcriptions run at once),
``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (where to listen).
"""

from __future__ import annotations

import argparse
import atexit
import difflib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np

import ds2
from ds2 import plots
from ds2.audio import SAMPLE_RATE, iter_blocks
from ds2.checkpoint import (
    fine_tuned_from,
    hardware_label,
    is_number,
    training_stages,
    training_totals,
)
from ds2.decoding import DEFAULT_BEAM_WIDTH
from ds2.errors import AudioError, CheckpointError, DS2Error
from ds2.hub import available_models, load_model
from ds2.subtitles import to_srt, to_vtt
from ds2.transcribe import prepare_decoder, transcribe

log = logging.getLogger("ds2.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
MAX_SECONDS = float(os.environ.get("DS2_MAX_SECONDS", 3600))  # longest input accepted, s
MAX_UPLOAD_MB = float(os.environ.get("DS2_MAX_UPLOAD_MB", 300))  # 1 h of 16-kHz wav is 115 MB
CONCURRENCY = int(os.environ.get("DS2_CONCURRENCY", 1))  # transcriptions at once (CPU-bound)
DEVICE = os.environ.get("DS2_DEVICE", "auto")
DEFAULT_LM_WEIGHT = 0.8  # LM weight and word bonus for a model with an LM but no tuned values
DEFAULT_WORD_SCORE = 0.0
KEEP_RESULTS_SECONDS = 3600  # request folders (figures, subtitles) older than this are removed
MAX_ALIGN_CELLS = 4_000_000  # reference x hypothesis symbols aligned for WER/CER (about 2 s)

LIVE_EVERY = 0.5  # seconds of microphone audio per streamed chunk
LIVE_WINDOW = 12.0  # seconds of audio re-transcribed at most per chunk
LIVE_KEEP = 4.0  # seconds kept as context when the live buffer is cut
LIVE_MAX_SECONDS = 600  # a live session stops after this long

NO_MODEL = (
    "No model is available: checkpoints/ holds no model and DS2_MODEL is not set. Type a "
    "checkpoint folder or a Hub repo id (org/name) into the model box, or start the app with "
    "--model."
)


# ---------------------------------------------------------------------------------------------
# Models: loaded once per spec, shared by every session


_MODELS: dict[str, ds2.LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def default_model_spec() -> str | None:
    """``$DS2_MODEL``, else the first shipped model, else None."""
    env = os.environ.get("DS2_MODEL", "").strip()
    if env:
        return env
    names = available_models()
    return names[0] if names else None


def model_choices() -> list[str]:
    """Shipped models and ``$DS2_MODELS`` (via ds2.available_models), with ``$DS2_MODEL`` first."""
    names = list(available_models())
    env = os.environ.get("DS2_MODEL", "").strip()
    if env and env not in names:
        names.insert(0, env)
    return names


def get_model(spec: str | None) -> ds2.LoadedModel:
    """The model named by ``spec`` (or the default), loading it on first use."""
    spec = (spec or "").strip() or default_model_spec()
    if not spec:
        raise CheckpointError(NO_MODEL)
    with _MODELS_LOCK:  # loads are rare; one lock keeps two requests from loading one model twice
        if spec not in _MODELS:
            _MODELS[spec] = load_model(spec, device=DEVICE)
        return _MODELS[spec]


def is_untrained(model: ds2.LoadedModel) -> bool:
    """True when config.json has no training metadata or calls itself untrained."""
    training = model.config.get("training") or {}
    return not training or "untrained" in json.dumps(training).lower()


def describe_model(model: ds2.LoadedModel) -> str:
    """One Markdown status line: name, size, device, LM, training facts or an untrained warning."""
    import torch

    dev = model.device
    where = "CPU"
    if dev.type == "cuda":
        where = f"CUDA ({torch.cuda.get_device_name(dev)})"
    n = model.model.num_parameters()
    arch = model.config.get("model", {}).get("name", "")
    parts = [f"**{model.name}**" + (f" ({arch})" if arch and arch != model.name else "")]
    parts.append(f"{n / 1e6:.1f} M parameters" if n >= 1e5 else f"{n:,} parameters")
    parts.append(f"on {where}")
    parts.append("word LM: yes" if model.lm_path else "no word LM")
    line = " · ".join(parts)
    if is_untrained(model):
        return (
            line + "\n\n⚠️ **This model is untrained** (random weights): the pictures are real, "
            "the transcripts are gibberish."
        )
    summary = training_summary(model.config.get("training") or {})
    return line + (f"\n\nTraining: {summary}" if summary else "")


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h >= 1 else f"{60 * h:.0f} min"


def training_summary(training: dict) -> str:
    """One readable line from config.json["training"]: steps, time, data, best CER, weights.

    A fine-tune's record lists the runs before it (``earlier_stages``); the line then gives the
    sums over all of them, and the last run's own corpus. Without that list, the figures are
    the fine-tune's own run, and the line says so.

    Written by train/train.py and train/export.py; keys may be missing from other checkpoints
    (a Hub model from elsewhere), so each fact appears only when its key does.
    """
    facts = []
    stages = training_stages(training)
    if len(stages) > 1:
        totals = training_totals(training)
        run = f"{len(stages)} training stages"
        if "steps" in totals:
            run += f", {totals['steps']:,} steps"
        if "elapsed_hours" in totals:
            places = {hardware_label(s.get("hardware")) for s in stages}
            where = places.pop() if len(places) == 1 else ""
            run += f" in {_hours(totals['elapsed_hours'])}" + (f" on {where}" if where else "")
        if not totals["complete"]:
            run += f" after {stages[0]['init_from']} (its own training not recorded)"
        facts.append(run)
        if "audio_hours_seen" in totals:
            facts.append(f"{_hours(totals['audio_hours_seen'])} of audio heard")
        if is_number(training.get("steps")):
            last = f"last stage: {training['steps']:,} steps"
            if is_number(training.get("train_hours")):
                last += f" on a {_hours(training['train_hours'])} corpus"
            facts.append(last)
    elif isinstance(training.get("steps"), int):
        run = f"{training['steps']:,} steps"
        if is_number(training.get("elapsed_hours")):
            where = hardware_label(training.get("hardware"))
            run += f" in {_hours(training['elapsed_hours'])}" + (f" on {where}" if where else "")
        start = fine_tuned_from(training)
        if start:
            run = f"fine-tuned from {start} for {run} (its earlier training is not recorded)"
        facts.append(run)
    hours, utts = training.get("train_hours"), training.get("train_utterances")
    if is_number(hours) and len(stages) == 1:
        data = f"{_hours(hours)} corpus" + (f" ({utts:,} clips)" if isinstance(utts, int) else "")
        seen = training.get("audio_hours_seen")
        if is_number(seen):
            data = f"{_hours(seen)} of audio heard from a {data}"
        facts.append(data)
    if is_number(training.get("best_valid_cer")):
        # a mean across runs was never validated as such: the figure is one checkpoint's
        whose = "last run's best" if training.get("averaged_from") else "best"
        facts.append(f"{whose} validation CER {100 * training['best_valid_cer']:.1f}%")
    if training.get("averaged_from"):  # train.average --mixed: a mean across runs
        facts.append(f"weights: mean of {len(training['averaged_from'])} runs' weights")
    elif training.get("averaged_steps"):
        facts.append(f"weights: mean of {len(training['averaged_steps'])} checkpoints")
    if not facts:  # a foreign layout: show its plain scalars rather than nothing
        facts = [f"{k}: {v}" for k, v in training.items() if isinstance(v, (str, int, float))][:5]
    return " · ".join(facts)


def on_model_change(spec):
    """Load the chosen model; update the status line and the decoder defaults."""
    try:
        model = get_model(spec)
    except DS2Error as e:
        return (
            f"⚠️ {e}",
            gr.update(),
            gr.update(),
            gr.update(value=False, interactive=False),
        )
    dec = model.decoder_defaults
    has_lm = model.lm_path is not None
    return (
        describe_model(model),
        gr.update(value=dec.get("lm_weight", DEFAULT_LM_WEIGHT), interactive=has_lm),
        gr.update(value=dec.get("word_score", DEFAULT_WORD_SCORE)),
        gr.update(
            value=has_lm,
            interactive=has_lm,
            info="the model's own KenLM word LM" if has_lm else "this model ships no word LM",
        ),
    )


# ---------------------------------------------------------------------------------------------
# Input checks


def probe_duration(path: str) -> float | None:
    """Seconds of audio in ``path`` from its header (soundfile, else ffprobe); None if unknown."""
    try:
        import soundfile as sf

        info = sf.info(path)
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:  # not a libsndfile format: ask ffprobe
        pass
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    cmd = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        return float(out)
    except (ValueError, subprocess.SubprocessError, OSError):
        return None


def _hms(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def check_input(path: str | None) -> None:
    """Refuse missing, oversized and overlong inputs before any work is done."""
    if not path:
        raise AudioError("No audio: upload a file, record with the microphone, or pick an example.")
    if not os.path.isfile(path):
        raise AudioError("The uploaded file is gone; upload it again.")
    size = os.path.getsize(path)
    if size == 0:
        raise AudioError("The uploaded file is empty (0 bytes).")
    if size > MAX_UPLOAD_MB * 1e6:
        raise AudioError(
            f"The file is {size / 1e6:.0f} MB; this app accepts up to {MAX_UPLOAD_MB:.0f} MB "
            "(compress it to FLAC or MP3)."
        )
    seconds = probe_duration(path)
    if seconds is not None and seconds > MAX_SECONDS:
        raise AudioError(
            f"The audio is {_hms(seconds)} long; this app accepts up to {_hms(MAX_SECONDS)}."
        )


# ---------------------------------------------------------------------------------------------
# Presentation helpers


def word_diff(greedy: str, beam: str):
    """Greedy and beam transcripts as gr.HighlightedText values marking where they differ."""
    a, b = greedy.split(), beam.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        la = lb = None
        if op == "replace":
            la = lb = "differs"
        elif op == "delete":
            la = "greedy only"
        elif op == "insert":
            lb = "beam only"
        left += [(w, la) for w in a[i1:i2]]
        right += [(w, lb) for w in b[j1:j2]]

    def spaced(tokens):
        out = []
        for i, t in enumerate(tokens):
            if i:
                out.append((" ", None))
            out.append(t)
        return out

    return spaced(left), spaced(right)


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_rates(reference: str, hypothesis: str) -> tuple[float, float | None]:
    """(WER, CER) of ``hypothesis`` against a normalised ``reference``.

    CER is None when both texts are too long for a quadratic alignment in a web request.
    """
    ref = ds2.normalize_text(reference)
    hyp = ds2.normalize_text(hypothesis)
    wer = edit_distance(ref.split(), hyp.split()) / max(1, len(ref.split()))
    if len(ref) * len(hyp) > MAX_ALIGN_CELLS:
        return wer, None
    return wer, edit_distance(list(ref), list(hyp)) / max(1, len(ref))


def _rates(name: str, reference: str, hypothesis: str) -> str:
    words = ds2.normalize_text(reference).split(), ds2.normalize_text(hypothesis).split()
    if len(words[0]) * len(words[1]) > MAX_ALIGN_CELLS:
        return f" · {name}: too long to score here (use python -m train.evaluate)"
    wer, cer = error_rates(reference, hypothesis)
    return f" · {name} WER {wer:.1%}" + (f" (CER {cer:.1%})" if cer is not None else "")


_RESULTS_ROOT = Path(tempfile.mkdtemp(prefix="ds2-app-"))
atexit.register(shutil.rmtree, _RESULTS_ROOT, ignore_errors=True)


def _request_dir() -> Path:
    """A fresh folder for one request's files; folders older than an hour are removed."""
    now = time.time()
    for old in _RESULTS_ROOT.iterdir():
        try:
            if now - old.stat().st_mtime > KEEP_RESULTS_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=_RESULTS_ROOT))


def _audio_for_plot(result, path: str):
    """The 16-kHz samples to draw: in memory, or streamed again from a long file."""
    if result.audio is not None:
        return result.audio
    return iter_blocks(path)  # the same block reader transcribe streams with


# ---------------------------------------------------------------------------------------------
# The transcription endpoint


def _user_errors(fn):
    """Turn ds2's errors into a message on the page; log anything else without a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DS2Error as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"Something went wrong ({type(e).__name__}: {e}). The server log has details."
            ) from None

    return wrapper


def decode_options(run_beam, beam_width, use_lm, lm_weight, word_score) -> dict:
    """The decoder controls as ``transcribe`` options."""
    return {
        "decoder": "beam" if run_beam else "greedy",
        "beam_width": int(beam_width),
        "lm": "auto" if use_lm else None,
        "lm_weight": float(lm_weight) if use_lm else None,
        "word_score": float(word_score),
    }


def warm_up(model: ds2.LoadedModel) -> threading.Thread:
    """Build the beam-search decoder the page starts with (the model's LM, its tuned weights) in
    a background thread, so the first request does not wait for the LM to load."""
    dec = model.decoder_defaults
    has_lm = model.lm_path is not None
    options = decode_options(
        True,
        DEFAULT_BEAM_WIDTH,
        has_lm,
        dec.get("lm_weight", DEFAULT_LM_WEIGHT),
        dec.get("word_score", DEFAULT_WORD_SCORE),
    )

    def run():
        t0 = time.perf_counter()
        try:
            prepare_decoder(model, **options)
        except DS2Error as e:  # the request that needs it will show the error
            log.warning("decoder warm-up failed: %s", e)
            return
        log.info("beam-search decoder ready in %.1f s", time.perf_counter() - t0)

    thread = threading.Thread(target=run, name="ds2-warm-up", daemon=True)
    thread.start()
    return thread


@_user_errors
def transcribe_audio(
    audio_path,
    model_spec,
    run_beam,
    beam_width,
    use_lm,
    lm_weight,
    word_score,
    reference,
    progress=gr.Progress(),  # noqa: B008 (gradio injects the tracker through this default)
):
    """Transcribe one file and draw everything; returns the values of the result components."""
    t_start = time.perf_counter()
    check_input(audio_path)
    progress(0.0, desc="Loading the model")
    model = get_model(model_spec)
    progress(0.02, desc="Reading the audio")
    options = decode_options(run_beam, beam_width, use_lm, lm_weight, word_score)
    try:
        result = transcribe(
            model,
            audio_path,
            progress=lambda f: progress(0.05 + 0.75 * f, desc="Running the network"),
            **options,
        )
    except AudioError as e:  # name the file as the user knows it, not by its server path
        raise AudioError(str(e).replace(audio_path, Path(audio_path).name)) from None
    progress(0.85, desc="Drawing")
    t_draw = time.perf_counter()
    out = _request_dir()
    words = result.words
    which = "beam" if result.beam else "greedy"
    spec_png = plots.save_png(
        plots.spectrogram_figure(
            _audio_for_plot(result, audio_path),
            words=words,
            duration=result.duration,
            title=f"Spectrogram, word boundaries from the {which} transcript",
        ),
        out / "spectrogram.png",
    )
    post_png = plots.save_png(
        plots.posterior_figure(
            result.log_probs,
            result.vocab,
            result.frame_seconds,
            greedy=result.greedy,
            words=words,
            duration=result.duration,
            title="CTC posteriors per 20-ms frame (circles: characters the greedy path emits)",
        ),
        out / "posteriors.png",
    )
    draw_ms = (time.perf_counter() - t_draw) * 1000

    stem = Path(audio_path).stem or "audio"
    srt, vtt = out / f"{stem}.srt", out / f"{stem}.vtt"
    srt.write_text(to_srt(words), encoding="utf-8")
    vtt.write_text(to_vtt(words), encoding="utf-8")
    player = gr.Audio(value=audio_path, subtitles=str(vtt) if words else None)

    greedy_text = result.greedy.text
    beam_text = result.beam[0].text if result.beam else ""
    greedy_hl, beam_hl = (
        word_diff(greedy_text, beam_text)
        if result.beam
        else (word_diff(greedy_text, greedy_text)[0], [])
    )
    nbest = [[i + 1, h.text, round(h.score, 3)] for i, h in enumerate(result.beam)]
    word_rows = [
        [w.word, round(w.start, 2), round(w.end, 2), round(w.confidence, 3)] for w in words
    ]

    t = result.timings
    server_ms = (time.perf_counter() - t_start) * 1000
    rows = [
        ("reading audio", t.get("load", 0.0)),
        ("features", t.get("features", 0.0)),
        ("network", t.get("model", 0.0)),
        ("greedy decoding", t.get("greedy", 0.0)),
        ("beam search", t.get("beam", 0.0)),
        ("drawing", draw_ms),
        ("server total", server_ms),
    ]
    timing_md = "| stage | ms |\n|---|---:|\n" + "\n".join(f"| {k} | {v:,.0f} |" for k, v in rows)
    timing_md += (
        f"\n\nReal-time factor: **{result.rtf:.3f}** for the model and decoding, "
        f"{server_ms / 1000 / result.duration:.3f} for the whole request "
        f"({result.duration:.1f} s of audio, {result.windows} window(s), device {model.device})."
    )
    summary = f"{_hms(result.duration)} of audio · model {model.name}"
    if reference and reference.strip():
        summary += _rates("greedy", reference, greedy_text)
        if result.beam:
            summary += _rates("beam", reference, beam_text)
    progress(1.0, desc="Done")
    return (
        result.text,
        summary,
        player,
        str(spec_png),
        str(post_png),
        greedy_hl,
        beam_hl,
        nbest,
        word_rows,
        [str(srt), str(vtt)],
        timing_md,
    )


# ---------------------------------------------------------------------------------------------
# Live microphone transcription


class LiveSession:
    """Microphone audio of one live session and its transcript so far.

    Only the tail of the recording (at most ``LIVE_WINDOW`` seconds) is re-transcribed when a
    chunk arrives. When the tail grows past the window, the words that end more than
    ``LIVE_KEEP`` seconds before its end are committed to the final text and their audio is
    dropped, so each chunk costs one pass over a bounded buffer however long the user speaks.
    """

    def __init__(self):
        self.committed: list[str] = []  # words final for good
        self.buffer = np.zeros(0, dtype=np.float32)  # 16-kHz tail not yet committed
        self.tail_text = ""  # greedy transcript of the buffer
        self.seconds = 0.0  # audio received in total

    @property
    def text(self) -> str:
        return " ".join([*self.committed, self.tail_text]).strip()

    def add(self, model, sample_rate: int, chunk: np.ndarray) -> str:
        """Append one microphone chunk and re-transcribe the tail; returns the partial text."""
        try:
            audio = ds2.load_audio((sample_rate, chunk), allow_silence=True)
        except AudioError:  # an empty or very short chunk: nothing to add
            return self.text
        self.seconds += len(audio) / SAMPLE_RATE
        self.buffer = np.concatenate([self.buffer, audio])
        words = self._transcribe(model, decoder="greedy")
        if len(self.buffer) > LIVE_WINDOW * SAMPLE_RATE:
            self._commit(words)
            words = self._transcribe(model, decoder="greedy")
        self.tail_text = " ".join(w.word for w in words)
        return self.text

    def finish(self, model, **options) -> str:
        """Transcribe what is left with the full decoder settings; returns the final text."""
        words = self._transcribe(model, **options) if len(self.buffer) else []
        self.committed += [w.word for w in words]
        self.buffer = np.zeros(0, dtype=np.float32)
        self.tail_text = ""
        return self.text

    def _transcribe(self, model, **options):
        if len(self.buffer) < 0.1 * SAMPLE_RATE:
            return []
        try:
            result = transcribe(model, self.buffer, sample_rate=SAMPLE_RATE, **options)
        except AudioError:  # silence so far
            return []
        return result.words

    def _commit(self, words) -> None:
        """Move the words that end well before the buffer's end into the final text."""
        limit = len(self.buffer) / SAMPLE_RATE - LIVE_KEEP
        done = [w for w in words if w.end <= limit]
        if done:
            cut = done[-1].end
            rest = words[len(done) :]
            if rest:  # cut in the pause between the last committed word and the next one
                cut = (cut + rest[0].start) / 2
        else:  # no word ends early enough (silence, or one very long word): keep the context
            cut = limit
            done = [w for w in words if (w.start + w.end) / 2 <= cut]
        self.committed += [w.word for w in done]
        self.buffer = self.buffer[int(cut * SAMPLE_RATE) :].copy()


def _live_status(session: LiveSession, done: bool = False) -> str:
    if done:
        return f"Done: {session.seconds:.1f} s transcribed."
    window = len(session.buffer) / SAMPLE_RATE
    return f"Listening: {session.seconds:.1f} s heard; the last {window:.1f} s are re-read."


@_user_errors
def live_step(chunk, session, model_spec):
    """One streamed microphone chunk -> the partial transcript and a status line."""
    session = session if isinstance(session, LiveSession) else LiveSession()
    if chunk is not None:
        sample_rate, data = chunk
        session.add(get_model(model_spec), sample_rate, data)
    return session.text, _live_status(session), session


@_user_errors
def live_finish(session, model_spec, run_beam, beam_width, use_lm, lm_weight, word_score):
    """Recording stopped: decode the remaining tail with the chosen decoder."""
    if not isinstance(session, LiveSession):
        session = LiveSession()
    options = decode_options(run_beam, beam_width, use_lm, lm_weight, word_score)
    text = session.finish(get_model(model_spec), **options)
    return text, text, _live_status(session, done=True), LiveSession()


def live_reset():
    return "", "", "Listening…", LiveSession()


# ---------------------------------------------------------------------------------------------
# The page


def load_examples() -> list[dict]:
    """examples/examples.json rows whose clip exists: {"file", "text", "voice"}."""
    path = EXAMPLES_DIR / "examples.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    return [
        dict(r, path=str(EXAMPLES_DIR / r["file"]))
        for r in rows
        if (EXAMPLES_DIR / r["file"]).is_file()
    ]


INTRO = f"""
# ds2: a DeepSpeech2 speech recognizer you can look into
Upload or record speech and see what the model does with it: the **spectrogram** it hears, its
**per-frame character probabilities** (CTC posteriors) on the same time axis, the **greedy** and
**beam-search** transcripts side by side, **word timings** and **subtitles**.
Any audio format, rate and channel count is accepted; files up to **{_hms(MAX_SECONDS)}** and
**{MAX_UPLOAD_MB:.0f} MB**; long files run in 30-s windows with a progress bar.
"""

CSS = """
.plot-stack img { width: 100%; }
.plot-stack { gap: 0 !important; }
"""


def build_demo() -> gr.Blocks:
    choices = model_choices()
    default = default_model_spec()
    examples = load_examples()
    with gr.Blocks(title="ds2: DeepSpeech2 you can look into", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                model_dd = gr.Dropdown(
                    choices=choices,
                    value=default,
                    allow_custom_value=True,
                    label="Model",
                    info="a shipped model, a checkpoint folder, or a Hub repo id (org/name[@rev])",
                )
            with gr.Column(scale=5):
                model_status = gr.Markdown(NO_MODEL if default is None else "Loading the model…")
        with gr.Accordion("Decoding", open=False):
            with gr.Row():
                run_beam = gr.Checkbox(value=True, label="Beam search (greedy always runs)")
                beam_width = gr.Slider(1, 256, value=DEFAULT_BEAM_WIDTH, step=1, label="Beam width")
                use_lm = gr.Checkbox(value=False, label="Word LM", interactive=False)
                lm_weight = gr.Slider(
                    0.0, 5.0, value=DEFAULT_LM_WEIGHT, step=0.05, label="LM weight"
                )
                word_score = gr.Slider(
                    -5.0, 5.0, value=DEFAULT_WORD_SCORE, step=0.1, label="Word bonus"
                )
        decoding = [run_beam, beam_width, use_lm, lm_weight, word_score]

        with gr.Tab("Transcribe"):
            with gr.Row():
                with gr.Column(scale=1):
                    audio_in = gr.Audio(
                        sources=["upload", "microphone"],
                        type="filepath",
                        label="Audio (any format, rate and channels)",
                        elem_id="audio-in",
                    )
                with gr.Column(scale=1):
                    reference = gr.Textbox(
                        label="Reference text (optional: gives WER / CER)",
                        placeholder="what is really said",
                        lines=3,
                        elem_id="reference",
                    )
                    run_btn = gr.Button("Transcribe", variant="primary", elem_id="run")
            if examples:
                gr.Examples(
                    examples=[[r["path"], r["text"]] for r in examples],
                    inputs=[audio_in, reference],
                    label="Examples: synthetic voices read Harvard sentences (click one)",
                )
            text_out = gr.Textbox(
                label="Transcript", lines=2, buttons=["copy"], elem_id="transcript"
            )
            summary = gr.Markdown(label="Summary", elem_id="summary")
            player = gr.Audio(
                label="Playback with subtitles",
                interactive=False,
                type="filepath",
                elem_id="player",
            )
            with gr.Column(elem_classes="plot-stack"):
                spec_img = gr.Image(
                    label="Spectrogram",
                    elem_id="spectrogram",
                    type="filepath",
                    format="png",
                    show_label=False,
                    buttons=["download", "fullscreen"],
                )
                post_img = gr.Image(
                    label="CTC posteriors",
                    elem_id="posteriors",
                    type="filepath",
                    format="png",
                    show_label=False,
                    buttons=["download", "fullscreen"],
                )
            colors = {"differs": "orange", "greedy only": "red", "beam only": "green"}
            with gr.Row():
                greedy_hl = gr.HighlightedText(
                    label="Greedy (best path)", elem_id="greedy", color_map=colors, show_legend=True
                )
                beam_hl = gr.HighlightedText(
                    label="Beam search (best)", elem_id="beam", color_map=colors, show_legend=True
                )
            with gr.Row():
                nbest_df = gr.Dataframe(
                    headers=["rank", "beam hypothesis", "score"],
                    label="Beam n-best",
                    interactive=False,
                    wrap=True,
                )
                words_df = gr.Dataframe(
                    headers=["word", "start (s)", "end (s)", "confidence"],
                    label="Words",
                    interactive=False,
                    max_height=320,
                )
            with gr.Row():
                subs = gr.File(
                    label="Subtitles (SRT, WebVTT)", file_count="multiple", interactive=False
                )
                timings = gr.Markdown(label="Timings", elem_id="timings")
            run_btn.click(
                transcribe_audio,
                inputs=[audio_in, model_dd, *decoding, reference],
                outputs=[
                    text_out,
                    summary,
                    player,
                    spec_img,
                    post_img,
                    greedy_hl,
                    beam_hl,
                    nbest_df,
                    words_df,
                    subs,
                    timings,
                ],
                api_name="transcribe",
            )

        with gr.Tab("Live"):
            gr.Markdown(
                "Speak into the microphone: the partial transcript (greedy) updates every "
                f"{LIVE_EVERY} s; when you stop, the rest is decoded with the settings above. "
                f"Sessions stop after {LIVE_MAX_SECONDS // 60} minutes."
            )
            live_state = gr.State(LiveSession())
            mic = gr.Audio(
                sources=["microphone"],
                streaming=True,
                type="numpy",
                label="Microphone",
                elem_id="live-mic",
            )
            live_status = gr.Markdown(elem_id="live-status")
            live_partial = gr.Textbox(label="Partial transcript", lines=3, elem_id="live-partial")
            live_final = gr.Textbox(
                label="Final transcript", lines=3, buttons=["copy"], elem_id="live-final"
            )
            mic.start_recording(
                live_reset,
                outputs=[live_partial, live_final, live_status, live_state],
                api_name=False,
            )
            mic.stream(
                live_step,
                inputs=[mic, live_state, model_dd],
                outputs=[live_partial, live_status, live_state],
                stream_every=LIVE_EVERY,
                time_limit=LIVE_MAX_SECONDS,
                show_progress="hidden",
                concurrency_limit=2,
                concurrency_id="live",
                api_name=False,
            )
            mic.stop_recording(
                live_finish,
                inputs=[live_state, model_dd, *decoding],
                outputs=[live_partial, live_final, live_status, live_state],
                concurrency_id="live",
                api_name=False,
            )

        gr.on(
            [demo.load, model_dd.change],
            on_model_change,
            inputs=model_dd,
            outputs=[model_status, lm_weight, word_score, use_lm],
            concurrency_limit=4,  # a status line must not wait behind an hour-long transcription
            concurrency_id="status",
            api_name=False,
        )
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=32)
    return demo


demo = build_demo()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve the ds2 web app.", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (0.0.0.0: every interface)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
        help="port to listen on",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="default model: folder, shipped name or Hub repo id ($DS2_MODEL)",
    )
    parser.add_argument(
        "--share", action="store_true", help="also serve through a gradio.live link"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = demo
    if args.model:
        os.environ["DS2_MODEL"] = args.model
        app = build_demo()  # the model list and default are read when the page is built
    spec = default_model_spec()
    if spec is None:
        log.warning(NO_MODEL)
    else:
        try:
            model = get_model(spec)
            log.info("model: %s", describe_model(model).split("\n")[0])
            warm_up(model)
        except DS2Error as e:  # the page still starts and shows the error in its status line
            log.warning("cannot load the default model %r: %s", spec, e)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=f"{MAX_UPLOAD_MB:.0f}mb",
        allowed_paths=[str(EXAMPLES_DIR)],
        ssr_mode=False,
        theme=gr.themes.Soft(),
        css=CSS,
    )


if __name__ == "__main__":
    main()
