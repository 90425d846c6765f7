"""Command line: ``python -m ds2 transcribe FILE...`` and ``python -m ds2 models``.

    python -m ds2 transcribe talk.wav                       # text on stdout (beam + the model's LM)
    python -m ds2 transcribe talk.wav --decoder greedy --format json
    python -m ds2 transcribe a.wav b.flac --format jsonl    # one JSON line per file
    python -m ds2 transcribe film.mp3 --format srt > film.srt
    python -m ds2 transcribe *.wav --format vtt --output-dir subs/

A file that cannot be transcribed (missing, not audio, silent) prints one line
``ds2: error: ...`` on stderr and the others are still done; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .decoding import DEFAULT_BEAM_WIDTH
from .errors import DS2Error

FORMATS = ("txt", "json", "jsonl", "srt", "vtt")
PROG = "ds2"


def _error(message: str) -> None:
    first = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{PROG}: error: {first}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    from .transcribe import OVERLAP_SECONDS, WINDOW_SECONDS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="DeepSpeech2 speech recognition you can look into.",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "transcribe",
        help="transcribe audio files",
        description="Transcribe audio files (wav, flac, ogg, mp3; more with ffmpeg installed).",
        formatter_class=fmt,
    )
    t.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    t.add_argument(
        "--model",
        default=None,
        help="checkpoint folder, shipped model name (see `ds2 models`) or Hub repo org/name[@rev]; "
        "default: $DS2_MODEL, else the default shipped model",
    )
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    t.add_argument(
        "--decoder",
        choices=("greedy", "beam"),
        default="beam",
        help="beam: beam search with the model's LM and lexicon when it ships them, as the app "
        "does; greedy: the most likely symbol per frame, no search (faster, more misspellings; "
        "its text is in --format json either way)",
    )
    t.add_argument(
        "--beam-width", type=int, default=DEFAULT_BEAM_WIDTH, help="hypotheses kept per frame"
    )
    t.add_argument("--nbest", type=int, default=5, help="beam transcripts reported (json)")
    t.add_argument(
        "--lm", default="auto", help="KenLM file (ARPA or binary); auto: the model's own LM, if any"
    )
    t.add_argument("--no-lm", action="store_true", help="beam search without any LM")
    t.add_argument("--lexicon", default=None, help="lexicon file; default: the model's, if any")
    t.add_argument(
        "--lm-weight", type=float, default=None, help="LM weight; default: the model's tuned value"
    )
    t.add_argument(
        "--word-score", type=float, default=None, help="per-word bonus; default: the model's tuned"
    )
    t.add_argument("--format", choices=FORMATS, default="txt", help="output format")
    t.add_argument(
        "--output-dir",
        default=None,
        help="write DIR/NAME.FORMAT per file (jsonl: DIR/transcripts.jsonl) instead of stdout",
    )
    t.add_argument(
        "--window-seconds",
        type=float,
        default=WINDOW_SECONDS,
        help="longer audio runs in overlapping windows of this length",
    )
    t.add_argument(
        "--overlap-seconds", type=float, default=OVERLAP_SECONDS, help="overlap of two windows"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar or 'wrote' messages")
    t.set_defaults(func=cmd_transcribe)

    m = sub.add_parser(
        "models",
        help="list the model names --model accepts",
        description="List shipped models (default first) and $DS2_MODELS repos.",
        formatter_class=fmt,
    )
    m.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DS2Error as e:
        _error(str(e))
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def cmd_models(args) -> int:
    from .hub import available_models

    names = available_models()
    if not names:
        print(
            f"{PROG}: no shipped models; pass --model FOLDER or --model org/name", file=sys.stderr
        )
    for name in names:
        print(name)
    return 0


class _Progress:
    """A tqdm bar on a terminal's stderr, opened only once a file turns out to take windows."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled, self.bar = name, enabled, None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if fraction >= 1.0:
                return  # a single pass: nothing to watch
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=self.name, unit="%", leave=False, file=sys.stderr)
        self.bar.update(round(fraction * 100) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _render(result, fmt: str) -> str:
    from .subtitles import to_srt, to_vtt

    if fmt == "txt":
        return result.text + "\n"
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    if fmt == "jsonl":
        return json.dumps(result.to_dict()) + "\n"
    if fmt == "srt":
        return to_srt(result.words)
    return to_vtt(result.words)


class _Outputs:
    """Where each rendered result goes: stdout, a folder, or beside the input."""

    def __init__(self, args):
        self.fmt = args.format
        self.quiet = args.quiet
        self.dir = Path(args.output_dir) if args.output_dir else None
        self.several = len(args.files) > 1
        self.json_items: list[dict] = []
        self.used: set[Path] = set()
        if self.dir is not None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DS2Error(f"cannot create output folder '{self.dir}': {e}") from None
            if self.fmt == "jsonl":
                self._write(self.dir / "transcripts.jsonl", "")

    def _target(self, source: str) -> Path:
        folder = self.dir if self.dir is not None else Path(source).parent
        stem = Path(source).stem or "audio"
        path = folder / f"{stem}.{self.fmt}"
        k = 2
        while path in self.used:  # a/x.wav and b/x.wav into one folder
            path = folder / f"{stem}-{k}.{self.fmt}"
            k += 1
        self.used.add(path)
        return path

    def _write(self, path: Path, text: str, mode: str = "w") -> None:
        try:
            with open(path, mode, encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise DS2Error(f"cannot write '{path}': {e}") from None

    def emit(self, source: str, result) -> None:
        text = _render(result, self.fmt)
        if self.fmt == "jsonl":
            if self.dir is not None:
                self._write(self.dir / "transcripts.jsonl", text, mode="a")
            else:
                sys.stdout.write(text)
                sys.stdout.flush()
            return
        if self.dir is not None or (self.several and self.fmt in ("srt", "vtt")):
            path = self._target(source)
            self._write(path, text)
            if not self.quiet:
                print(f"{PROG}: wrote {path}", file=sys.stderr)
        elif self.fmt == "json" and self.several:
            self.json_items.append(result.to_dict())  # one JSON array, printed at the end
        elif self.fmt == "txt" and self.several:
            sys.stdout.write(f"{source}: {text}")
            sys.stdout.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def finish(self) -> None:
        if self.json_items:
            sys.stdout.write(json.dumps(self.json_items, indent=2) + "\n")


def cmd_transcribe(args) -> int:
    from .hub import load_model
    from .transcribe import TranscribeOptions, transcribe

    options = TranscribeOptions(
        decoder=args.decoder,
        beam_width=args.beam_width,
        nbest=args.nbest,
        lm=None if args.no_lm else args.lm,
        lexicon=args.lexicon,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        window_seconds=args.window_seconds,
        overlap_seconds=args.overlap_seconds,
    )
    model = load_model(args.model, device=args.device)
    outputs = _Outputs(args)
    show_progress = not args.quiet and sys.stderr.isatty()
    failed = 0
    for path in args.files:
        progress = _Progress(os.path.basename(path), show_progress)
        try:
            result = transcribe(model, path, options, progress=progress)
            progress.close()
            outputs.emit(path, result)
        except DS2Error as e:
            progress.close()
            message = str(e)
            _error(message if path in message else f"{path}: {message}")
            failed += 1
    outputs.finish()
    return 2 if failed else 0
