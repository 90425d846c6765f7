import re
import shutil
import subprocess

import pytest

from ds2.decoding import Word
from ds2.subtitles import (
    MAX_CHARS,
    MAX_DURATION,
    MAX_GAP,
    Cue,
    format_timestamp,
    make_cues,
    to_srt,
    to_vtt,
    wrap_lines,
)

TEXT = (
    "it was the best of times it was the worst of times it was the age of wisdom it was the "
    "age of foolishness it was the epoch of belief it was the epoch of incredulity it was the "
    "season of light it was the season of darkness"
).split()
PAUSES = {9, 23}  # a 1.2-s pause after these word indices


def timed_words(words=TEXT, pauses=PAUSES) -> list[Word]:
    out, t = [], 0.25
    for i, w in enumerate(words):
        length = 0.08 * len(w) + 0.1
        out.append(Word(w, round(t, 3), round(t + length, 3), 0.9))
        t += length + (1.2 if i in pauses else 0.06)
    return out


def seconds(stamp: str, sep: str) -> float:
    h, m, rest = stamp.split(":")
    s, ms = rest.split(sep)
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


SRT_BLOCK = re.compile(
    r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n((?:[^\n]+\n)+)$"
)
VTT_CUE = re.compile(r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n((?:[^\n]+\n)+)$")


def parse_srt(text: str) -> list[tuple[int, float, float, list[str]]]:
    """A strict SubRip reader, independent of ds2.subtitles."""
    cues = []
    for block in text.split("\n\n"):
        m = SRT_BLOCK.match(block if block.endswith("\n") else block + "\n")
        assert m, f"malformed SRT block: {block!r}"
        lines = m.group(4).rstrip("\n").split("\n")
        cues.append((int(m.group(1)), seconds(m.group(2), ","), seconds(m.group(3), ","), lines))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, list[str]]]:
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n") :].split("\n\n"):
        m = VTT_CUE.match(block if block.endswith("\n") else block + "\n")
        assert m, f"malformed VTT cue: {block!r}"
        lines = m.group(3).rstrip("\n").split("\n")
        cues.append((seconds(m.group(1), "."), seconds(m.group(2), "."), lines))
    return cues


def test_timestamps():
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(1.5) == "00:00:01,500"
    assert format_timestamp(3661.042) == "01:01:01,042"
    assert format_timestamp(59.9996) == "00:01:00,000"  # rounding carries into the minute
    assert format_timestamp(2.25, ".") == "00:00:02.250"
    assert format_timestamp(-0.01) == "00:00:00,000"


def test_wrap_lines_balances_and_refuses_what_does_not_fit():
    words = "the quick brown fox jumps over the lazy dog and keeps on running far".split()
    lines = wrap_lines(words)
    assert len(lines) == 2 and all(len(x) <= MAX_CHARS for x in lines)
    assert " ".join(lines) == " ".join(words)
    assert abs(len(lines[0]) - len(lines[1])) <= 8  # balanced, not first-line-full
    assert wrap_lines(words * 3) is None
    assert wrap_lines(["short", "line"]) == ("short line",)
    assert wrap_lines(["x" * 60]) == ("x" * 60,)  # an unbreakable word stands alone


def test_cues_follow_the_rules():
    words = timed_words()
    cues = make_cues(words)
    # every word once, in order
    assert " ".join(" ".join(c.lines) for c in cues).split() == TEXT
    for c in cues:
        assert 1 <= len(c.lines) <= 2
        assert all(len(line) <= MAX_CHARS for line in c.lines)
        assert c.end > c.start
        assert c.end - c.start <= MAX_DURATION + 1e-9
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start  # no overlap
    # a pause always ends a cue: no cue spans a gap longer than MAX_GAP
    for i in PAUSES:
        gap_start, gap_end = words[i].end, words[i + 1].start
        assert gap_end - gap_start > MAX_GAP
        assert not any(c.start < gap_start + 1e-9 and c.end > gap_end - 1e-9 for c in cues)
    # cue times come from the words
    starts = {w.start for w in words}
    assert all(c.start in starts for c in cues)


def test_short_cue_is_extended_but_not_into_the_next():
    words = [Word("hi", 1.0, 1.1, 1.0), Word("there", 1.5, 1.9, 1.0), Word("you", 4.0, 4.2, 1.0)]
    cues = make_cues(words, max_gap=0.5)
    assert [c.text for c in cues] == ["hi there", "you"]
    assert cues[0].end == pytest.approx(1.9)
    assert cues[1].end == pytest.approx(4.0 + 0.7)  # lengthened to the minimum duration
    cues = make_cues([Word("a", 1.0, 1.1, 1.0), Word("b", 1.4, 1.5, 1.0)], max_gap=0.2)
    assert cues[0].end == pytest.approx(1.4)  # would overlap "b": stops where "b" starts


def test_srt_parses_back():
    words = timed_words()
    cues = make_cues(words)
    parsed = parse_srt(to_srt(words))
    assert [p[0] for p in parsed] == list(range(1, len(cues) + 1))
    for (_, start, end, lines), cue in zip(parsed, cues):
        assert start == pytest.approx(cue.start, abs=5e-4)
        assert end == pytest.approx(cue.end, abs=5e-4)
        assert tuple(lines) == cue.lines


def test_vtt_parses_back():
    words = [{"word": w.word, "start": w.start, "end": w.end} for w in timed_words()]
    cues = make_cues(words)
    parsed = parse_vtt(to_vtt(words))
    assert len(parsed) == len(cues)
    for (start, end, lines), cue in zip(parsed, cues):
        assert start == pytest.approx(cue.start, abs=5e-4)
        assert end == pytest.approx(cue.end, abs=5e-4)
        assert tuple(lines) == cue.lines


def test_empty_and_ready_made_cues():
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n"
    cue = Cue(3723.25, 3725.0, ("one line", "two lines"))
    assert to_srt([cue]) == "1\n01:02:03,250 --> 01:02:05,000\none line\ntwo lines\n"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_ffmpeg_reads_our_subtitles(tmp_path, fmt):
    """An independent reader (ffmpeg's srt and webvtt demuxers) sees the same cues."""
    words = timed_words()
    path = tmp_path / f"subs.{fmt}"
    path.write_text(to_srt(words) if fmt == "srt" else to_vtt(words))
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "srt", "-"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    again = parse_srt(proc.stdout.strip("\n") + "\n")
    cues = make_cues(words)
    assert len(again) == len(cues)
    for (_, start, end, lines), cue in zip(again, cues):
        assert start == pytest.approx(cue.start, abs=2e-3)
        assert end == pytest.approx(cue.end, abs=2e-3)
        assert " ".join(lines) == " ".join(cue.lines)
