"""Subtitles from timed words: SRT and WebVTT files a video player shows as they are.

Words (anything with ``word``, ``start``, ``end`` in seconds, such as :class:`ds2.decoding.Word`,
or dicts with those keys) are grouped into cues the way subtitle style guides ask for:

- a pause longer than ``max_gap`` (0.5 s) always starts a new cue, so text is not on screen
  while nobody speaks;
- a cue holds at most ``max_lines`` (2) lines of at most ``max_chars`` (42) characters, the
  common broadcast limit, and is on screen at most ``max_duration`` (6 s);
- lines of a two-line cue are balanced, so the eye does not jump between a long and a short line;
- a cue stays at least ``min_duration`` (0.7 s) when the next cue leaves room, and cues never
  overlap.

    >>> from ds2.subtitles import to_srt
    >>> print(to_srt(result.words), end="")
    1
    00:00:00,120 --> 00:00:01,900
    hello world this is a test
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_CHARS = 42  # characters per line (BBC / Netflix guideline for Latin scripts)
MAX_LINES = 2  # lines per cue
MAX_DURATION = 6.0  # seconds a cue may stay on screen
MAX_GAP = 0.5  # seconds of silence between two words that ends a cue
MIN_DURATION = 0.7  # seconds a cue stays up at least, when the next cue leaves room


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` (seconds); ``lines`` are shown stacked."""

    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _fields(w) -> tuple[str, float, float]:
    if isinstance(w, dict):
        return str(w["word"]), float(w["start"]), float(w["end"])
    return str(w.word), float(w.start), float(w.end)


def wrap_lines(words: list[str], max_chars: int = MAX_CHARS, max_lines: int = MAX_LINES):
    """Break ``words`` into at most ``max_lines`` lines of at most ``max_chars`` characters.

    Returns the lines (a tuple of str), or None when the words do not fit. Two-line cues are
    balanced (the split that makes the longer line shortest). A single word longer than
    ``max_chars`` is returned alone on its line, since it cannot be broken.
    """
    if not words:
        return ()
    text = " ".join(words)
    if len(text) <= max_chars or (len(words) == 1 and max_lines >= 1):
        return (text,)
    if max_lines < 2:
        return None
    if max_lines == 2:
        best = None
        for k in range(1, len(words)):
            a, b = " ".join(words[:k]), " ".join(words[k:])
            longest = max(len(a), len(b))
            if longest <= max_chars and (best is None or longest < best[0]):
                best = (longest, (a, b))
        return best[1] if best else None
    # More than two lines: fill each line greedily.
    lines, current = [], []
    for w in words:
        if current and len(" ".join([*current, w])) > max_chars:
            lines.append(" ".join(current))
            current = []
        current.append(w)
    lines.append(" ".join(current))
    if len(lines) > max_lines or any(len(x) > max_chars and " " in x for x in lines):
        return None
    return tuple(lines)


def make_cues(
    words: Iterable,
    *,
    max_chars: int = MAX_CHARS,
    max_lines: int = MAX_LINES,
    max_duration: float = MAX_DURATION,
    max_gap: float = MAX_GAP,
    min_duration: float = MIN_DURATION,
) -> list[Cue]:
    """Group timed words into subtitle cues (see the module docstring for the rules).

    words : iterable of objects with ``word``, ``start``, ``end`` (seconds), or such dicts,
        in time order.
    Returns cues in time order; ``cue.end <= next_cue.start`` always holds.
    """
    items = [_fields(w) for w in words]
    items = [(t.strip(), s, max(e, s)) for t, s, e in items if t.strip()]
    groups: list[list[tuple[str, float, float]]] = []
    current: list[tuple[str, float, float]] = []
    for item in items:
        if current:
            gap = item[1] - current[-1][2]
            too_long = item[2] - current[0][1] > max_duration
            fits = wrap_lines([w for w, _, _ in current] + [item[0]], max_chars, max_lines)
            if gap > max_gap or too_long or fits is None:
                groups.append(current)
                current = []
        current.append(item)
    if current:
        groups.append(current)

    cues = []
    for i, group in enumerate(groups):
        start, end = group[0][1], group[-1][2]
        next_start = groups[i + 1][0][1] if i + 1 < len(groups) else None
        # Short cues stay up a little longer so they can be read, but never into the next one.
        end = max(end, start + min_duration)
        if next_start is not None:
            end = min(end, next_start)
        end = max(end, start)
        lines = wrap_lines([w for w, _, _ in group], max_chars, max_lines)
        cues.append(Cue(start=start, end=end, lines=lines))
    return cues


def format_timestamp(seconds: float, decimal: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT, ``decimal=","``) or ``HH:MM:SS.mmm`` (WebVTT, ``decimal="."``)."""
    ms = max(0, round(seconds * 1000))  # rounding the total first carries 59.9995 s to 1 min
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _cues(words_or_cues, **kwargs) -> list[Cue]:
    items = list(words_or_cues)
    if items and all(isinstance(c, Cue) for c in items):
        return items
    return make_cues(items, **kwargs)


def to_srt(words, **kwargs) -> str:
    """SubRip text of ``words`` (or of ready-made :class:`Cue` objects).

    Keyword arguments go to :func:`make_cues`. An empty transcript gives an empty string.
    """
    blocks = []
    for i, cue in enumerate(_cues(words, **kwargs), start=1):
        span = f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}"
        blocks.append(f"{i}\n{span}\n{cue.text}\n")
    return "\n".join(blocks)


def to_vtt(words, **kwargs) -> str:
    """WebVTT text of ``words`` (or of ready-made :class:`Cue` objects), starting ``WEBVTT``.

    Keyword arguments go to :func:`make_cues`.
    """
    blocks = ["WEBVTT\n"]
    for cue in _cues(words, **kwargs):
        span = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        blocks.append(f"{span}\n{cue.text}\n")
    return "\n".join(blocks)
