"""Manifests: the one corpus format every data source writes and the trainer reads.

A manifest is a JSONL file, one utterance per line::

    {"audio": "audio/0001.flac", "duration": 3.52, "text": "he ran fast", "speaker": "flite-slt"}

``audio`` is absolute or relative to the manifest's folder (relative paths keep a corpus
movable); :func:`read_manifest` resolves it to an absolute path. ``duration`` is in seconds,
``text`` is normalised with :func:`ds2.text.normalize_text` (``' a-z`` and single spaces), and
``speaker`` is a stable id of the voice. Extra keys are kept as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ds2.errors import DS2Error

REQUIRED = {"audio": str, "duration": (int, float), "text": str, "speaker": str}


class ManifestError(DS2Error, ValueError):
    """A manifest file is missing, unreadable, or has a malformed row."""


def _check_row(row, where: str) -> dict:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key, kind in REQUIRED.items():
        if key not in row:
            raise ManifestError(f"{where}: missing key '{key}' (row has {sorted(row)})")
        if not isinstance(row[key], kind) or isinstance(row[key], bool):
            raise ManifestError(f"{where}: '{key}' must be {kind}, got {row[key]!r}")
    if not row["duration"] > 0:
        raise ManifestError(f"{where}: duration must be > 0 seconds, got {row['duration']!r}")
    if not row["audio"]:
        raise ManifestError(f"{where}: 'audio' is empty")
    return row


def read_manifest(
    path: str | os.PathLike,
    *,
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> list[dict]:
    """Read a JSONL manifest; audio paths come back absolute.

    Parameters
    ----------
    path : manifest file.
    min_duration, max_duration : float, optional
        Keep only utterances with ``min_duration <= duration <= max_duration`` (seconds).

    Raises
    ------
    ManifestError
        The file is missing, or a line is not JSON or lacks a key; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: '{path}'")
    base = path.resolve().parent
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: not valid JSON ({e.msg}): {line[:80]!r}") from None
            row = _check_row(row, where)
            row["duration"] = float(row["duration"])
            audio = Path(row["audio"])
            row["audio"] = str(audio if audio.is_absolute() else base / audio)
            rows.append(row)
    return filter_duration(rows, min_duration, max_duration)


def filter_duration(
    rows: Iterable[dict], min_duration: float | None = None, max_duration: float | None = None
) -> list[dict]:
    """Rows with ``min_duration <= duration <= max_duration`` (seconds; None = no bound)."""
    lo = -float("inf") if min_duration is None else min_duration
    hi = float("inf") if max_duration is None else max_duration
    return [r for r in rows if lo <= r["duration"] <= hi]


def write_manifest(path: str | os.PathLike, rows: Iterable[dict], *, relative: bool = True) -> Path:
    """Write ``rows`` as JSONL atomically (a reader never sees a half-written file).

    With ``relative`` (default), audio paths under the manifest's folder are stored relative to
    it so the corpus folder can be moved or copied as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    lines = []
    for i, row in enumerate(rows):
        row = dict(_check_row(dict(row), f"row {i} for {path}"))
        # A relative path given here is relative to the working directory; readers resolve
        # relative paths against the manifest's folder, so make it absolute first.
        audio = Path(os.path.abspath(row["audio"]))
        row["audio"] = str(audio)
        if relative:
            try:
                row["audio"] = str(audio.relative_to(base))
            except ValueError:
                pass  # outside the manifest's folder: keep it absolute
        lines.append(json.dumps(row, ensure_ascii=False))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + ("\n" if lines else ""))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def manifest_stats(rows: Iterable[dict]) -> dict:
    """Size of a manifest: keys utterances, hours, speakers, min_s, max_s, mean_s."""
    durations, speakers = [], set()
    for r in rows:
        durations.append(float(r["duration"]))
        speakers.add(r["speaker"])
    n = len(durations)
    return {
        "utterances": n,
        "hours": round(sum(durations) / 3600, 4),
        "speakers": len(speakers),
        "min_s": round(min(durations), 3) if n else 0.0,
        "max_s": round(max(durations), 3) if n else 0.0,
        "mean_s": round(sum(durations) / n, 3) if n else 0.0,
    }


def audio_hashes(rows: Iterable[dict]) -> list[str]:
    """The SHA-256 of each row's audio file, in row order.

    Re-synthesized clips keep their paths and often their durations (espeak-ng is not bit-exact
    across runs and hosts), so only the bytes tell a rebuilt set from the one a score was
    measured on.

    Raises
    ------
    ManifestError
        A row's audio file is missing or unreadable; the message names it.
    """
    import hashlib

    out = []
    for row in rows:
        path = Path(row["audio"])
        try:
            with open(path, "rb") as f:
                out.append(hashlib.file_digest(f, "sha256").hexdigest())
        except OSError as e:
            raise ManifestError(f"cannot read audio '{path}': {e.strerror or e}") from e
    return out


def combined_hash(hashes: Iterable[str]) -> str:
    """One SHA-256 over per-clip hashes (from :func:`audio_hashes`), order included."""
    import hashlib

    h = hashlib.sha256()
    for x in hashes:
        h.update(x.encode() + b"\n")
    return h.hexdigest()


# Which manifest field a set's scores are broken down by (train.evaluate) and its clips
# fingerprinted by (train.evaluate's results, --hash).
GROUP_KEYS = ("speaker", "engine")  # manifest fields a set is broken down by, first that fits
MAX_GROUPS = 24  # more distinct values than this make no readable table: try the next key


def group_key(rows: Sequence[dict]) -> str | None:
    """The manifest field to break a set's scores down by: ``speaker`` when the rows name
    2-:data:`MAX_GROUPS` speakers (an unseen-voice test), else ``engine`` when they name 2 or
    more engines (a seen-voice set of hundreds of voices), else None (nothing to compare)."""
    for key in GROUP_KEYS:
        values = {r.get(key) for r in rows}
        if None not in values and 2 <= len(values) <= MAX_GROUPS:
            return key
    return None


def audio_fingerprint(rows: Sequence[dict], hashes: Sequence[str] | None = None) -> dict:
    """Which clips a set's scores belong to: ``{"audio_sha256": the set's}``, and
    ``"audio_sha256_by_group"`` (``{group: hash}``, :func:`group_key`'s groups) when it has
    groups. ``hashes`` are the rows' :func:`audio_hashes`, if already read."""
    hashes = audio_hashes(rows) if hashes is None else hashes
    out = {"audio_sha256": combined_hash(hashes)}
    key = group_key(rows)
    if key:
        groups = [str(r[key]) for r in rows]
        out["audio_sha256_by_group"] = {
            g: combined_hash(h for h, gg in zip(hashes, groups) if gg == g)
            for g in sorted(set(groups))
        }
    return out


def sample_hours(rows: list[dict], hours: float, seed: int) -> list[dict]:
    """A random subset of ``rows`` holding about ``hours`` of audio (all of them if fewer),
    the same for the same rows and seed; rows keep their order."""
    order = np.random.default_rng(seed).permutation(len(rows))
    keep, total = [], 0.0
    for i in order:
        if total >= hours * 3600:
            break
        keep.append(int(i))
        total += float(rows[i]["duration"])
    return [rows[i] for i in sorted(keep)]


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(
        description="Print the size of manifests (hours, utterances, speakers), or with "
        "--sample-hours write a random subset of them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("manifests", nargs="+", help="JSONL manifest files")
    p.add_argument(
        "--sample-hours", type=float, help="write a random subset of about this many hours to --out"
    )
    p.add_argument(
        "--out",
        help="with --sample-hours: the subset's manifest; without it, every row of --engines / "
        "--max-duration, in order",
    )
    p.add_argument("--seed", type=int, default=0, help="with --sample-hours: the subset's seed")
    p.add_argument(
        "--engines",
        help="with --sample-hours: draw only from rows of these comma-separated engines "
        "(the manifest's 'engine', e.g. flite,festival)",
    )
    p.add_argument(
        "--max-duration",
        type=float,
        help="with --sample-hours: draw only from clips at most this long (s), so the subset "
        "keeps its hours when training drops longer clips",
    )
    p.add_argument(
        "--hash",
        action="store_true",
        help="also print the SHA-256 of the clips' bytes, for the set and for each voice (as "
        "train.evaluate records them): whether a rebuilt set is the one a score was measured on",
    )
    args = p.parse_args(argv)
    if args.hash and (args.sample_hours is not None or args.out):
        p.error("--hash prints the manifests' hashes; it takes no --sample-hours / --out")
    if args.sample_hours is not None or args.out:
        if not args.out or (args.sample_hours is not None and args.sample_hours <= 0):
            p.error("--sample-hours needs a positive number of hours and --out")
        rows = [r for m in args.manifests for r in read_manifest(m)]
        if args.engines:
            engines = {e.strip() for e in args.engines.split(",") if e.strip()}
            rows = [r for r in rows if r.get("engine") in engines]
        if args.max_duration is not None:
            rows = [r for r in rows if float(r["duration"]) <= args.max_duration]
        if not rows:
            p.error("no rows left to sample from after --engines / --max-duration")
        if args.sample_hours is None:
            subset = rows
        else:
            subset = sample_hours(rows, args.sample_hours, args.seed)
        write_manifest(args.out, subset)
        s = manifest_stats(subset)
        print(f"{args.out}: {s['utterances']} utterances, {s['hours']:.2f} h")
        return
    for m in args.manifests:
        rows = read_manifest(m)
        s = manifest_stats(rows)
        print(
            f"{m}: {s['utterances']} utterances, {s['hours']:.2f} h, {s['speakers']} speakers, "
            f"{s['min_s']:.1f}-{s['max_s']:.1f} s (mean {s['mean_s']:.1f} s)"
        )
        if args.hash:
            _print_hashes(rows)


def _print_hashes(rows: list[dict]) -> None:
    """The set's audio hash, then each group's, as train.evaluate records them."""
    from collections import Counter

    fp = audio_fingerprint(rows)
    print(f"  audio sha256 {fp['audio_sha256']}")
    key = group_key(rows)
    sizes = Counter(str(r[key]) for r in rows) if key else {}
    for g, h in fp.get("audio_sha256_by_group", {}).items():
        print(f"  {key} {g} ({sizes[g]}): {h}")


if __name__ == "__main__":
    main()
