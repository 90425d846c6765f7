import json

import pytest

from train.manifest import (
    ManifestError,
    filter_duration,
    main,
    manifest_stats,
    read_manifest,
    sample_hours,
    write_manifest,
)


def _rows(tmp_path):
    return [
        {
            "audio": str(tmp_path / "a" / "1.flac"),
            "duration": 1.5,
            "text": "he ran fast",
            "speaker": "s1",
            "engine": "espeak",
        },
        {"audio": "/elsewhere/2.flac", "duration": 3.0, "text": "a dying fire", "speaker": "s2"},
        {"audio": str(tmp_path / "3.flac"), "duration": 12.0, "text": "hi there", "speaker": "s1"},
    ]


def test_round_trip_keeps_rows_and_extra_keys(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", _rows(tmp_path))
    back = read_manifest(path)
    assert back == _rows(tmp_path)
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    # Paths under the manifest's folder are stored relative; others stay absolute.
    assert stored[0]["audio"] == "a/1.flac"
    assert stored[1]["audio"] == "/elsewhere/2.flac"


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "m.jsonl"
    m.write_text('{"audio": "x/y.flac", "duration": 2, "text": "ok go", "speaker": "a"}\n\n')
    (row,) = read_manifest(m)
    assert row["audio"] == str((tmp_path / "sub" / "x" / "y.flac").resolve())
    assert row["duration"] == 2.0 and isinstance(row["duration"], float)


def test_duration_filters(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", _rows(tmp_path))
    assert [r["duration"] for r in read_manifest(path, min_duration=2.0)] == [3.0, 12.0]
    assert [r["duration"] for r in read_manifest(path, max_duration=10)] == [1.5, 3.0]
    assert len(filter_duration(_rows(tmp_path), 1.0, 3.0)) == 2


def test_stats(tmp_path):
    s = manifest_stats(_rows(tmp_path))
    assert s["utterances"] == 3 and s["speakers"] == 2
    assert s["hours"] == pytest.approx(16.5 / 3600, abs=1e-4)
    assert s["min_s"] == 1.5 and s["max_s"] == 12.0
    assert manifest_stats([])["utterances"] == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('{"audio": "a.flac", "duration": 1, "text": "x y"}', "missing key 'speaker'"),
        ('{"audio": "a.flac", "duration": "1", "text": "x", "speaker": "s"}', "'duration' must"),
        ('{"audio": "a.flac", "duration": 0, "text": "x", "speaker": "s"}', "duration must be > 0"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, line, message):
    m = tmp_path / "bad.jsonl"
    good = '{"audio": "a.flac", "duration": 1, "text": "x", "speaker": "s"}'
    m.write_text(good + "\n" + line + "\n")
    with pytest.raises(ManifestError, match=message) as e:
        read_manifest(m)
    assert f"{m}:2" in str(e.value)


def test_missing_file_and_bad_write(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")
    target = tmp_path / "m.jsonl"
    write_manifest(target, _rows(tmp_path)[:1])
    before = target.read_text()
    with pytest.raises(ManifestError, match="missing key"):
        write_manifest(target, [{"audio": "x.flac", "duration": 1.0, "text": "a"}])
    # The failed write left the old manifest intact and no temporary file behind.
    assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_cwd_relative_paths_are_stored_relative_to_the_manifest(tmp_path, monkeypatch):
    # A builder run from the repo root passes paths like "data/corpus/audio/x.flac".
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "corpus" / "audio").mkdir(parents=True)
    wav = tmp_path / "data" / "corpus" / "audio" / "x.flac"
    wav.write_bytes(b"")
    rel = "data/corpus/audio/x.flac"
    write_manifest(
        "data/corpus/m.jsonl", [{"audio": rel, "duration": 1.0, "text": "a", "speaker": "s"}]
    )
    stored = json.loads((tmp_path / "data/corpus/m.jsonl").read_text())["audio"]
    assert stored == "audio/x.flac"
    monkeypatch.chdir("/")
    assert read_manifest(tmp_path / "data/corpus/m.jsonl")[0]["audio"] == str(wav)


def test_sample_hours_draws_a_seeded_subset_of_about_that_much_audio(tmp_path, capsys):
    rows = [
        {"audio": f"/c/{i}.flac", "duration": 1.0 + i % 5, "text": f"t{i}", "speaker": "s"}
        for i in range(400)
    ]  # 1200 s
    subset = sample_hours(rows, 0.1, seed=3)  # 360 s: stops at the first clip past it
    total = sum(r["duration"] for r in subset)
    assert 360 <= total < 365
    assert subset == sample_hours(rows, 0.1, seed=3)
    assert subset != sample_hours(rows, 0.1, seed=4)
    ids = [rows.index(r) for r in subset]
    assert ids == sorted(ids)  # rows keep their order
    assert sample_hours(rows, 1.0, seed=3) == rows  # asking for more than there is: all of it

    src = write_manifest(tmp_path / "all.jsonl", rows)
    main([str(src), "--sample-hours", "0.1", "--seed", "3", "--out", str(tmp_path / "s.jsonl")])
    assert read_manifest(tmp_path / "s.jsonl") == subset
    assert "s.jsonl: " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(src), "--sample-hours", "0.1"])  # no --out


def test_sample_hours_can_draw_from_some_engines_and_short_clips_only(tmp_path):
    engines = ("espeak", "flite", "festival")
    rows = [
        {
            "audio": f"/c/{i}.flac",
            "duration": 2.0 + 4 * (i % 3 == 0),  # every third clip lasts 6 s
            "text": f"t{i}",
            "speaker": "s",
            "engine": engines[i % 4 % 3],
        }
        for i in range(300)
    ]
    src = write_manifest(tmp_path / "all.jsonl", rows)
    out = tmp_path / "s.jsonl"
    main([str(src), "--sample-hours", "0.05", "--engines", "flite,festival", "--out", str(out)])
    picked = read_manifest(out)
    assert {r["engine"] for r in picked} == {"flite", "festival"}
    assert 180 <= sum(r["duration"] for r in picked) < 186

    main(
        [
            str(src),
            "--sample-hours",
            "1",
            "--engines",
            "flite",
            "--max-duration",
            "3",
            "--out",
            str(out),
        ]
    )
    picked = read_manifest(out)
    expected = [r for r in rows if r["engine"] == "flite" and r["duration"] <= 3]
    assert picked == expected  # asking for more than there is: every flite clip of 3 s or less
    with pytest.raises(SystemExit):
        main([str(src), "--sample-hours", "1", "--engines", "mbrola", "--out", str(out)])


def test_out_without_sample_hours_keeps_every_row_of_the_engines(tmp_path):
    rows = [
        {"audio": f"/c/{i}.flac", "duration": 2.0, "text": f"t{i}", "speaker": "s", "engine": e}
        for i, e in enumerate(["espeak", "flite", "festival", "pico", "flite"])
    ]
    src = write_manifest(tmp_path / "all.jsonl", rows)
    out = tmp_path / "natural.jsonl"
    main([str(src), "--engines", "flite,festival", "--out", str(out)])
    assert read_manifest(out) == [rows[1], rows[2], rows[4]]


def test_hash_tells_a_rebuilt_clip_from_the_same_one(tmp_path, capsys):
    """--hash prints the set's and each voice's clip hash; rewriting one voice's clip with other
    bytes moves the set's hash and that voice's, and leaves the other voice's alone."""
    import hashlib

    rows = []
    for i, speaker in enumerate(["v1", "v1", "v2"]):
        clip = tmp_path / f"{i}.flac"
        clip.write_bytes(b"clip %d" % i)
        rows.append({"audio": str(clip), "duration": 1.0, "text": "hi", "speaker": speaker})
    m = write_manifest(tmp_path / "t.jsonl", rows)

    def hashes():
        main([str(m), "--hash"])
        _, whole, *voices = capsys.readouterr().out.splitlines()
        assert whole.startswith("  audio sha256 ")
        return {"set": whole.split()[-1], **dict(v.strip().split(": ") for v in voices)}

    before = hashes()
    assert set(before) == {"set", "speaker v1 (2)", "speaker v2 (1)"}
    one = hashlib.sha256(hashlib.sha256(b"clip 2").hexdigest().encode() + b"\n").hexdigest()
    assert before["speaker v2 (1)"] == one
    (tmp_path / "1.flac").write_bytes(b"clip 1, rebuilt")
    after = hashes()
    assert after["speaker v2 (1)"] == before["speaker v2 (1)"]
    assert after["speaker v1 (2)"] != before["speaker v1 (2)"]
    assert after["set"] != before["set"]
    with pytest.raises(SystemExit):
        main([str(m), "--hash", "--out", str(tmp_path / "x.jsonl")])
