"""train.plots: one run's curves, and a model's training stages drawn end to end."""

import json

import numpy as np
import pytest
from PIL import Image

from train import plots


def _log(path, events):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _train(step, loss, elapsed):
    return {"event": "train", "step": step, "loss": loss, "elapsed": elapsed, "audio_s_per_s": 36}


def _valid(step, cer):
    return {"event": "valid", "step": step, "loss": 1.0, "cer": cer, "wer": 2 * cer}


@pytest.fixture
def stages(tmp_path):
    first = _log(tmp_path / "exp" / "scratch" / "log.jsonl",
                 [{"event": "data", "step": 0, "valid_utterances": 1000}]
                 + [_train(s, 3.0 / s, s) for s in range(10, 110, 10)]
                 + [_valid(50, 0.4), _valid(100, 0.2)])  # fmt: skip
    # resumed at step 20: steps 30 and 40 are logged twice, the later record kept; it ends on a
    # validation past its last train event
    second = _log(tmp_path / "deep2_log.jsonl",
                  [{"event": "data", "step": 0, "valid_utterances": 300},
                   {"event": "data", "step": 20, "valid_utterances": 200}]
                  + [_train(s, 0.9, s) for s in (10, 20, 30, 40)]
                  + [_train(s, 0.5, s) for s in (30, 40, 50)] + [_valid(60, 0.1)])  # fmt: skip
    # a stage that logged nothing trainable yet is left out
    empty = _log(tmp_path / "empty_log.jsonl", [{"event": "data", "step": 0}])
    return [("scratch", first), ("deep2", second), ("empty", empty)]


def test_history_lays_the_stages_end_to_end(stages):
    runs = plots.history_runs(stages)
    assert [(name, start) for name, start, *_ in runs] == [("scratch", 0), ("deep2", 100)]
    _, _, train, valid, hours, clips = runs[1]
    assert [e["step"] for e in train] == [10, 20, 30, 40, 50]
    assert [e["loss"] for e in train] == [0.9, 0.9, 0.5, 0.5, 0.5]
    assert [e["cer"] for e in valid] == [0.1]
    # 36 audio-s per s over the first run's 100 s of training: one hour of audio
    assert runs[0][4] == pytest.approx(1.0)
    # the validation set's size is the one the stage's last data event gives
    assert (runs[0][5], clips) == (1000, 200)


def test_history_marks_each_validation_set_size_apart(stages, tmp_path):
    runs = plots.history_runs(stages)
    assert plots.valid_markers(runs) == {1000: "o", 200: "s"}
    # a stage validated on a set as large as an earlier one shares its marker; one that never
    # validated takes none; a log without a data event is its own, unrecorded, size
    third = _log(tmp_path / "third_log.jsonl",
                 [{"event": "data", "step": 0, "valid_utterances": 1000}, _train(5, 0.4, 5),
                  _valid(5, 0.1)])  # fmt: skip
    silent = _log(tmp_path / "silent_log.jsonl",
                  [{"event": "data", "step": 0, "valid_utterances": 7},
                   _train(5, 0.4, 5)])  # fmt: skip
    old = _log(tmp_path / "old_log.jsonl", [_train(5, 0.4, 5), _valid(5, 0.1)])
    more = plots.history_runs(stages + [("third", third), ("silent", silent), ("old", old)])
    assert plots.valid_markers(more) == {1000: "o", 200: "s", None: "^"}


def test_history_figure_is_drawn(stages, tmp_path):
    out = plots.plot_history(stages, tmp_path / "history.png")
    with Image.open(out) as im:
        assert im.size == (1200, 650)
        assert np.asarray(im.convert("L")).std() > 10
    assert not list(tmp_path.glob(".*.tmp.png"))
    assert plots.plot_history(stages[2:], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_history_cli_names_stages_and_refuses_bad_input(stages, tmp_path, capsys):
    assert plots._stage_name("a/b/deep7_log.jsonl")[0] == "deep7"
    assert plots._stage_name("exp/ds2_large_gpu/log.jsonl")[0] == "ds2_large_gpu"
    assert plots._stage_name("first=x/log.jsonl") == ("first", plots.Path("x/log.jsonl"))
    out = tmp_path / "h.png"
    plots.main(["--history", f"scratch={stages[0][1]}", str(stages[1][1]), "--out", str(out)])
    assert capsys.readouterr().out.strip() == str(out) and out.is_file()
    for argv, message in [
        (["--history", str(tmp_path / "nope.jsonl"), "--out", str(out)], "no such log"),
        (["--history", str(stages[0][1])], "--history takes"),
        ([], "give an experiment folder"),
    ]:
        with pytest.raises(SystemExit):
            plots.main(argv)
        assert message in capsys.readouterr().err


def test_a_short_runs_train_losses_are_marked(tmp_path, monkeypatch):
    # A run stopped early may log one train point: a line through one point draws nothing,
    # so it is marked; a longer run's curve is a plain line.
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)

    def train_line(n):
        log = _log(
            tmp_path / f"log{n}.jsonl", [_train(s, 1.0, s) for s in range(50, 50 * n + 1, 50)]
        )
        assert plots.plot_losses(log, tmp_path / f"loss{n}.png").is_file()
        [line] = [ln for ln in drawn[-1].axes[0].lines if ln.get_label() == "train (smoothed)"]
        return line

    one = train_line(1)
    assert list(one.get_xdata()) == [50] and one.get_marker() == "o"
    assert train_line(20).get_marker() in (None, "None", "")


def test_history_marks_a_stage_that_logged_one_train_point(stages, tmp_path, monkeypatch):
    # The history figure shares the curve: a stage stopped early (one train event) is marked,
    # the full stages stay plain lines.
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)
    short = _log(tmp_path / "deep3_log.jsonl", [_train(10, 0.4, 10), _valid(10, 0.1)])
    assert plots.plot_history([*stages, ("deep3", short)], tmp_path / "h.png").is_file()
    curves = {len(ln.get_xdata()): ln.get_marker() for ln in drawn[-1].axes[0].lines}
    assert curves[1] == "o"
    assert curves[10] in (None, "None", "")
