"""Export: a training checkpoint becomes a Hub-ready folder that loads to the same model."""

import json
import shutil

import pytest
import soundfile as sf
import torch

from ds2.checkpoint import load_folder
from ds2.errors import CheckpointError, DS2Error
from tests.utils import espeak, make_tiny_checkpoint
from train.export import export, main, push_to_hub
from train.lm import main as build_lm

TRAINING = {
    "train_manifests": ["/data/synth/train.jsonl"],
    "train_hours": 12.25,
    "train_utterances": 9876,
    "steps": 4321,
    "epochs": 7.5,
    "elapsed_hours": 1.75,
    "precision": "bf16",
    "hardware": {"gpu": "NVIDIA H100 80GB HBM3", "cpu_count": 16, "torch": "2.11.0"},
    "best_valid_cer": 0.0812,
    "best_step": 4000,
}
RESULTS = {
    "model": {"name": "tiny"},
    "decoding": {"beam_width": 32, "lm_weight": 0.9, "word_score": 1.5},
    "modes": ["greedy", "beam_lm"],
    "sets": {
        "test": {
            "utterances": 500,
            "hours": 0.8,
            "modes": {
                "greedy": {
                    "wer": 0.1834,
                    "cer": 0.0612,
                    "substitutions": 100,
                    "deletions": 20,
                    "insertions": 10,
                },  # fmt: skip
                "beam_lm": {
                    "wer": 0.1207,
                    "cer": 0.0511,
                    "substitutions": 70,
                    "deletions": 12,
                    "insertions": 9,
                },  # fmt: skip
            },
        }
    },
}


@pytest.fixture
def experiment(tmp_path):
    """EXP/ with checkpoints/best (a ds2 folder + trainer state), loss.png, and an LM."""
    exp = tmp_path / "exp"
    ckpt = make_tiny_checkpoint(exp / "checkpoints" / "best", seed=3, **TRAINING)
    (ckpt / "trainer_state.json").write_text('{"step": 4321}')
    (ckpt / "trainer_state.safetensors").write_bytes(b"\0" * 64)
    (exp / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "lm.txt").write_text("hello world\nthe cat sat\n")
    build_lm(["--text", str(tmp_path / "lm.txt"), "--order", "2", "--out", str(tmp_path / "lm")])
    return ckpt, tmp_path / "lm"


def _log_probs(folder):
    torch.manual_seed(0)
    x = torch.randn(2, 201, 120)  # (batch, n_bins, n_frames)
    lengths = torch.tensor([120, 80])
    with torch.inference_mode():
        return load_folder(folder).model(x, lengths)[0]


def test_export_folder_loads_to_the_same_model(experiment, tmp_path):
    ckpt, lm = experiment
    tune = tmp_path / "tune.json"
    tune.write_text(json.dumps({"best": {"lm_weight": 0.9, "word_score": 1.5}}))
    out = export(ckpt, tmp_path / "ds2-tiny", lm=lm, tune=tune, eval_results=RESULTS,
                 repo_id="someone/ds2-tiny")  # fmt: skip

    names = {p.name for p in out.iterdir()}
    assert names == {"config.json", "model.safetensors", "lexicon.txt", "lm.arpa", "loss.png",
                     "eval_results.json", "wer.png", "README.md"}  # fmt: skip
    assert "![WER by set and decoding mode](wer.png)" in (out / "README.md").read_text()
    assert not any(n.startswith("trainer_state") for n in names)
    assert torch.equal(_log_probs(ckpt), _log_probs(out))

    m = load_folder(out)
    assert m.lm_path == out / "lm.arpa" and m.lexicon_path == out / "lexicon.txt"
    assert m.decoder_defaults == {"lm_weight": 0.9, "word_score": 1.5}
    assert m.config["training"]["steps"] == 4321
    assert (out / "lexicon.txt").read_text() == (lm / "lexicon.txt").read_text()


def test_exported_results_name_the_shipped_folder(experiment, tmp_path):
    """Results evaluated in a staging folder ship naming the exported folder and its LM."""
    ckpt, lm = experiment
    staged = {**RESULTS, "model": {"name": "tiny", "folder": "exp/stage/ds2-tiny"},
              "decoding": {**RESULTS["decoding"], "lm": "exp/stage/ds2-tiny/lm.arpa",
                           "lexicon": "exp/stage/ds2-tiny/lexicon.txt"}}  # fmt: skip
    out = export(ckpt, tmp_path / "ds2-tiny", lm=lm, eval_results=staged)
    shipped = json.loads((out / "eval_results.json").read_text())
    assert shipped["model"] == {"name": "tiny", "folder": str(out)}
    assert shipped["decoding"]["lm"] == str(out / "lm.arpa")
    assert shipped["decoding"]["lexicon"] == str(out / "lexicon.txt")
    assert shipped["sets"] == RESULTS["sets"]
    assert staged["model"]["folder"] == "exp/stage/ds2-tiny"  # the caller's dict is untouched
    # an LM from elsewhere is not the shipped folder's: its path is kept
    other = {**staged, "decoding": {**staged["decoding"], "lm": "/lms/big.bin"}}
    out = export(ckpt, tmp_path / "b", lm=lm, eval_results=other)
    assert json.loads((out / "eval_results.json").read_text())["decoding"]["lm"] == "/lms/big.bin"


def test_model_card_states_the_facts(experiment, tmp_path):
    from huggingface_hub import ModelCard

    ckpt, lm = experiment
    out = export(ckpt, tmp_path / "ds2-tiny", lm=lm, eval_results=RESULTS,
                 repo_id="someone/ds2-tiny")  # fmt: skip
    text = (out / "README.md").read_text()
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "mit" and data["language"] == "en"
    assert data["library_name"] == "ds2"
    assert {"speech-recognition", "ctc", "deepspeech2"} <= set(data["tags"])
    metrics = {(r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert metrics[("wer", "WER (beam_lm)")] == 12.07
    assert metrics[("cer", "CER (greedy)")] == 6.12
    for fact in ("12.07", "18.34", "12.25 h", "4321", "9876", "1.75 h", "NVIDIA H100 80GB HBM3",
                 "bf16", "8.12 % at step 4000", "`synth/train.jsonl`",
                 "![training curves](loss.png)",
                 'ds2.load_model("someone/ds2-tiny")', "upload_folder", "untuned defaults",
                 "2-gram modified Kneser-Ney"):  # fmt: skip
        assert fact in text, fact


def test_peak_lr_is_read_from_the_run_log_when_missing(experiment, tmp_path):
    """A checkpoint from before the trainer kept peak_lr gets the highest lr its log shows up to
    its own step (4321), so the stage table does not show a later, lower --lr."""
    ckpt, _ = experiment
    events = [{"event": "train", "step": 100, "lr": 1e-3},
              {"event": "train", "step": 4000, "lr": 5e-4},
              {"event": "train", "step": 5000, "lr": 2e-3}]  # fmt: skip  # past the checkpoint
    (ckpt.parent.parent / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    training = load_folder(export(ckpt, tmp_path / "ds2-tiny")).config["training"]
    assert training["peak_lr"] == 1e-3


def test_audio_seen_is_estimated_from_the_run_log_when_missing(experiment, tmp_path):
    """Checkpoints from before the trainer counted audio get it from EXP/log.jsonl."""
    ckpt, _ = experiment
    events = [{"event": "data", "step": 0}]  # 2 windows: 100 s at 10 a-s/s, 50 s at 20 a-s/s
    events += [{"event": "train", "step": 10, "audio_s_per_s": 10.0, "elapsed": 100.0},
               {"event": "train", "step": 20, "audio_s_per_s": 20.0, "elapsed": 150.0},
               {"event": "train", "step": 4400, "audio_s_per_s": 1e6, "elapsed": 1e4}]  # fmt: skip
    log = ckpt.parent.parent / "log.jsonl"  # the checkpoint is at step 4321: step 4400 is not its
    log.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "tr')  # torn tail
    out = export(ckpt, tmp_path / "ds2-tiny")
    training = load_folder(out).config["training"]
    assert training["audio_hours_seen"] == round(2000 / 3600, 2)
    assert training["audio_hours_seen_estimated"] is True
    assert training["epochs"] == round(2000 / 3600 / 12.25, 3)  # not the trainer's 7.5
    assert "peak_lr" not in training  # these events logged no lr: nothing to fill
    assert "34 min (estimated from the log)" in (out / "README.md").read_text()
    log.unlink()  # no log, no estimate: the trainer's figures stay
    training = load_folder(export(ckpt, tmp_path / "b")).config["training"]
    assert "audio_hours_seen" not in training and training["epochs"] == 7.5


def test_card_shows_validation_history_up_to_the_exported_step(experiment, tmp_path):
    """Every 500 steps and the exported one, from EXP/log.jsonl; later events are not its own."""
    ckpt, _ = experiment  # its training ends at step 4321
    valid = [(437, 0.61), (500, 0.57), (1000, 0.42), (1000, 0.41), (1500, 0.35), (4000, 0.2512),
             (4321, 0.2209), (4500, 0.19)]  # fmt: skip
    events = [{"event": "valid", "step": s, "cer": c, "wer": 2 * c, "loss": 1.0} for s, c in valid]
    events.insert(3, {"event": "train", "step": 1001, "loss": 1.0})
    (ckpt.parent.parent / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    out = export(ckpt, tmp_path / "ds2-tiny")
    history = load_folder(out).config["training"]["valid_history"]
    assert [h["step"] for h in history] == [500, 1000, 1500, 4000, 4321]
    assert history[1] == {"step": 1000, "cer": 0.41, "wer": 0.82}  # the re-validated step's last
    text = (out / "README.md").read_text()
    assert "| step | 500 | 1000 | 1500 | 4000 | 4321 |" in text
    assert "| CER | 57.0 | 41.0 | 35.0 | 25.1 | 22.1 |" in text
    assert "| WER | 114.0 | 82.0 | 70.0 | 50.2 | 44.2 |" in text
    (ckpt.parent.parent / "log.jsonl").unlink()  # no log: no history, no table
    out = export(ckpt, tmp_path / "b")
    assert "valid_history" not in load_folder(out).config["training"]
    assert "| step |" not in (out / "README.md").read_text()


def test_model_card_names_the_runs_of_a_cross_run_mean(experiment, tmp_path):
    """A mean of two runs' weights (train.average --mixed) says which runs went in."""
    from train.average import average_checkpoints

    ckpt, _ = experiment
    other = tmp_path / "other"
    shutil.copytree(ckpt, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["training"].update(steps=4500, init_from={"spec": "exp/run_a/avg"})
    cfg["training"]["config"] = {"seed": 99}
    (other / "config.json").write_text(json.dumps(cfg))
    soup = average_checkpoints([ckpt, other], tmp_path / "soup", mixed=True)
    text = (export(soup, tmp_path / "m") / "README.md").read_text()
    assert (
        f"| weights | mean of 2 runs' weights: `{ckpt}` (step 4321), `{other}` (step 4500, "
        "trained from `exp/run_a/avg`) |" in text
    )
    assert "mean of 2 checkpoints" not in text
    # the best validation CER is one checkpoint's of the last run, not the mean's
    assert "| best validation CER (last run) | 8.12 % at step" in text


def test_model_card_has_worst_errors_corpus_averaging_and_notes(experiment, tmp_path):
    """What a reader needs to judge the model: where it fails, on which voices, how it was made."""
    ckpt, lm = experiment
    corpus = tmp_path / "data" / "synth"
    corpus.mkdir(parents=True)
    (corpus / "train.jsonl").write_text("")
    (corpus / "corpus.json").write_text(json.dumps({"seed": 7, "splits": {"train": {
        "speakers": 265, "hours_by_engine": {"espeak": 50.25, "flite": 30.0}}}}))  # fmt: skip
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["training"]["train_manifests"] = [str(corpus / "train.jsonl")]
    cfg["training"]["averaged_steps"] = [4000, 4250, 4321]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    results = json.loads(json.dumps(RESULTS))
    worst = [{"id": f"utt{i}", "errors": 9 - i, "wer": 1.0, "ref": "a", "hyp": "b",
              "diff": f"the [cat->bat{i}] sat"} for i in range(7)]  # fmt: skip
    results["sets"]["test"]["modes"]["greedy"]["worst"] = worst
    results["sets"]["test"]["group_by"] = "speaker"
    for mode, cer in (("greedy", 0.3012), ("beam_lm", 0.2503)):
        results["sets"]["test"]["modes"][mode]["by_group"] = {
            "espeak-en-us": {"utterances": 400, "wer": 0.1, "cer": 0.0311},
            "flite-rms": {"utterances": 100, "wer": 0.6, "cer": cer},
        }
    notes = tmp_path / "notes.md"
    notes.write_text("Steps 0-706 ran on a 20-h corpus, then 100 h.\n")
    # The JSON alone, with a stale figure beside it: the card's figures are drawn from the
    # results that ship (session 49 copied a JSON away from its figures, and lost them).
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "voices.png").write_bytes(b"stale")
    main([
        "--checkpoint", str(ckpt), "--out", str(tmp_path / "m"), "--notes", str(notes),
        "--eval", str(_write(tmp_path / "evals" / "r.json", results)),
    ])  # fmt: skip
    text = (tmp_path / "m" / "README.md").read_text()
    for png in ("wer.png", "voices.png"):
        assert (tmp_path / "m" / png).read_bytes().startswith(b"\x89PNG"), png
        assert f"]({png})" in text
    for fact in ("### Worst errors", "**test, greedy**", "`utt0` (9 errors): the [cat->bat0] sat",
                 "`utt4` (5 errors)", "265 (espeak 50.2 h, flite 30.0 h)", "seed 7",
                 "mean of 3 checkpoints (steps 4000, 4250, 4321)", "### Training notes",
                 "then 100 h.", "### By voice", "| speaker | utterances | greedy | beam_lm |",
                 "| flite-rms | 100 | 30.12 / 60.00 | 25.03 / 60.00 |"):  # fmt: skip
        assert fact in text, fact
    assert text.index("| flite-rms |") < text.index("| espeak-en-us |")  # worst voice first
    assert "`utt5`" not in text  # five per set and mode
    assert "**test, beam_lm**" not in text  # no worst list there: no empty heading
    with pytest.raises(SystemExit, match="cannot read --notes"):
        main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "n"), "--notes", "/nope.md"])


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "compact, dtype, ratio, atol",
    [({"half": True}, "float16", 0.6, 2e-3), ({"quantize": 8}, "int8", 0.35, 2e-2),
     ({"quantize": 6}, "int6", 0.3, 0.1),
     ({"quantize": 6, "quantize_finer": ("rnn.weight_hh",)}, "int6+", 0.35, 0.1)],
)  # fmt: skip
def test_compact_export_is_smaller_and_loads_as_float32(
    experiment, tmp_path, compact, dtype, ratio, atol
):
    ckpt, _ = experiment
    full = export(ckpt, tmp_path / "full")
    small = export(ckpt, tmp_path / dtype, **compact)
    size = (small / "model.safetensors").stat().st_size
    assert size < ratio * (full / "model.safetensors").stat().st_size
    m = load_folder(small)
    assert all(p.dtype == torch.float32 for p in m.model.parameters())
    torch.testing.assert_close(_log_probs(small), _log_probs(full), atol=atol, rtol=0)
    assert json.loads((small / "config.json").read_text())["training"]["exported_weights"] == dtype
    assert "decoder" not in json.loads((full / "config.json").read_text())
    assert "Not evaluated yet" in (full / "README.md").read_text()
    again = export(ckpt, tmp_path / f"{dtype}-again", **compact)  # deterministic: same bytes
    assert (again / "model.safetensors").read_bytes() == (small / "model.safetensors").read_bytes()


def test_reexporting_a_model_folder_keeps_its_weights(experiment, tmp_path):
    """A shipped folder re-exported with another LM keeps the evaluated weights byte for byte;
    asked for another format, it converts from the float32 values its codes stand for."""
    ckpt, lm = experiment
    int6 = export(ckpt, tmp_path / "int6", quantize=6)
    again = export(int6, tmp_path / "again", lm=lm, lm_weight=1.5, word_score=-1.0)
    weights = (again / "model.safetensors").read_bytes()
    assert weights == (int6 / "model.safetensors").read_bytes()
    cfg = json.loads((again / "config.json").read_text())
    assert cfg["training"]["exported_weights"] == "int6" and cfg["decoder"]["lm"] == "lm.arpa"
    assert cfg["training"]["earlier_stages"] == []  # no stage added by exporting
    assert torch.equal(_log_probs(again), _log_probs(int6))
    for compact, dtype in (({"quantize": 8}, "int8"), ({"half": True}, "float16")):
        out = export(int6, tmp_path / dtype, **compact)
        torch.testing.assert_close(_log_probs(out), _log_probs(int6), atol=0.05, rtol=0)
        assert json.loads((out / "config.json").read_text())["training"]["exported_weights"] == (
            dtype
        )


def test_export_takes_one_compact_format(experiment, tmp_path):
    ckpt, _ = experiment
    with pytest.raises(DS2Error, match="not both"):
        export(ckpt, tmp_path / "both", half=True, quantize=8)
    with pytest.raises(DS2Error, match="need quantized weights"):
        export(ckpt, tmp_path / "finer", quantize_finer=("rnn.weight_hh",))
    with pytest.raises(DS2Error, match="no weight is named like rnn.nope"):
        export(ckpt, tmp_path / "nope", quantize=6, quantize_finer=("rnn.nope",))
    assert not (tmp_path / "finer").exists() and not (tmp_path / "nope").exists()
    with pytest.raises(DS2Error, match="bits must be 2-8"):
        export(ckpt, tmp_path / "nine", quantize=9)


def test_export_refuses_to_clobber_and_leaves_nothing_on_failure(experiment, tmp_path):
    ckpt, _ = experiment
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DS2Error, match="--overwrite"):
        export(ckpt, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    export(ckpt, out, overwrite=True)
    assert not (out / "keep.txt").exists()

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError):
        export(broken, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(DS2Error, match="no lm.bin or lm.arpa"):
        export(ckpt, tmp_path / "never", lm=tmp_path)
    assert not (tmp_path / "never").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_export_ships_the_training_history_figure_when_given(experiment, tmp_path):
    ckpt, _ = experiment
    history = tmp_path / "stages.png"
    history.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\1" * 50)
    out = export(ckpt, tmp_path / "ds2-tiny", history_png=history)
    assert (out / "history.png").read_bytes() == history.read_bytes()
    assert "![every training stage](history.png)" in (out / "README.md").read_text()
    # a missing figure fails before anything is written
    with pytest.raises(DS2Error, match="training history figure not found"):
        export(ckpt, tmp_path / "never", history_png=tmp_path / "nope.png")
    assert not (tmp_path / "never").exists()
    assert "history.png" not in (export(ckpt, tmp_path / "plain") / "README.md").read_text()


def test_export_refuses_a_missing_loss_curve_before_writing_anything(experiment, tmp_path):
    ckpt, _ = experiment
    with pytest.raises(DS2Error, match="loss curve not found"):
        export(ckpt, tmp_path / "never", loss_png=tmp_path / "nope.png")
    # checked before the temporary folder is made: nothing of the export is left behind
    assert not (tmp_path / "never").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    curve = tmp_path / "curve.png"
    curve.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\2" * 50)
    assert (export(ckpt, tmp_path / "given", loss_png=curve) / "loss.png").read_bytes() == (
        curve.read_bytes()
    )


def test_cli_and_push(experiment, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    ckpt, lm = experiment
    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw))
            return type("Info", (), {"commit_url": f"https://hub/{kw['repo_id']}/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    out = tmp_path / "pushed"
    main(["--checkpoint", str(ckpt), "--out", str(out), "--lm", str(lm), "--lm-weight", "0.7",
          "--word-score", "2", "--push", "me/ds2-tiny", "--private"])  # fmt: skip
    assert "pushed: https://hub/me/ds2-tiny/commit/1" in capsys.readouterr().out
    assert calls[1] == ("create_repo", "me/ds2-tiny",
                        {"repo_type": "model", "private": True, "exist_ok": True})  # fmt: skip
    assert calls[2][1]["folder_path"] == str(out) and calls[2][1]["repo_id"] == "me/ds2-tiny"
    assert load_folder(out).decoder_defaults == {"lm_weight": 0.7, "word_score": 2.0}
    with pytest.raises(CheckpointError):
        push_to_hub(tmp_path, "me/nothing")


def test_card_lists_each_training_manifest_once_with_its_repeats():
    from train.export import _manifest_list

    got = _manifest_list(["/d/synth/train.jsonl", "/d/short/train.jsonl", "/d/short/train.jsonl"])
    assert got == "`synth/train.jsonl`, `short/train.jsonl` x2"
    assert _manifest_list([]) == "unknown"


def test_card_tables_every_stage_of_a_fine_tune_rebuilt_from_local_folders(tmp_path):
    """A fine-tune from before the trainer kept lineages: export follows init_from back."""

    def stage(name, parent, steps, hours, seen, lr, precision):
        return make_tiny_checkpoint(
            tmp_path / name / "avg",
            steps=steps,
            elapsed_hours=hours,
            audio_hours_seen=seen,
            train_hours=116.24 if parent else 100.44,
            precision=precision,
            config={"lr": lr},
            init_from={"spec": str(parent), "name": "avg"} if parent else None,
        )

    base = stage("base", None, 9000, 10.44, 209.77, 5e-4, "fp32")
    ft1 = stage("ft1", base, 1407, 1.4, 30.28, 3e-4, "fp32")
    ft2 = stage("ft2", ft1, 2451, 1.55, 52.89, 2e-4, "bf16")
    out = export(ft2, tmp_path / "shipped")
    training = load_folder(out).config["training"]
    assert [s["steps"] for s in training["earlier_stages"]] == [9000, 1407]
    assert training["earlier_stages"][1]["init_from"] == str(base)
    text = (out / "README.md").read_text()
    assert "| 1 | scratch | 9,000 | 10.44 h | 209.77 h | 100.44 h | 0.0005 | fp32 |" in text
    assert f"| 3 | `{ft1}` | 2,451 | 1.55 h | 52.89 h | 116.24 h | 0.0002 | bf16 |" in text
    assert "| **all** | | **12,858** | **13.39 h** | **292.94 h** | | | |" in text
    assert "not recorded here" not in text
    # the facts table above the stage table is introduced as the last stage's, not the whole's
    assert text.index("The last training stage") < text.index("| optimizer steps | 2451 |")
    # a model trained in one run has no stage table, and its facts are the whole training
    one = (export(base, tmp_path / "one") / "README.md").read_text()
    assert "trained in stages" not in one and "The last training stage" not in one

    # once the first stage's folder is gone, the chain stops there and the card says so
    shutil.rmtree(base)
    text = (export(ft2, tmp_path / "again") / "README.md").read_text()
    assert f"| 1 | `{base}` | 1,407 |" in text
    assert f"Stage 1 started from `{base}`, whose training is not recorded" in text


def test_export_ships_the_binary_lm_and_its_card_says_so(experiment, tmp_path):
    """With lm.bin beside lm.arpa, the folder gets the binary only, and the card names its
    format and quantisation from lm.json."""
    ckpt, lm = experiment
    binary = b"mmap lm http://kheafield.com/code format version 5\x00" + b"\x07" * 64
    (lm / "lm.bin").write_bytes(binary)
    stats = json.loads((lm / "lm.json").read_text())
    stats.update(binary="lm.bin", binary_bytes=len(binary), binary_quantize=8)
    (lm / "lm.json").write_text(json.dumps(stats))
    out = export(ckpt, tmp_path / "ds2-tiny", lm=lm, eval_results=RESULTS)

    names = {p.name for p in out.iterdir()}
    assert "lm.bin" in names and "lm.arpa" not in names
    assert (out / "lm.bin").read_bytes() == binary
    assert load_folder(out).lm_path == out / "lm.bin"
    card = (out / "README.md").read_text()
    mb = stats["arpa_bytes"] / 1e6
    assert f"8-bit quantised probabilities and backoffs) in place of its {mb:.1f}-MB ARPA" in card


def test_export_tests_on_the_spot_and_reuses_the_kept_network_output(
    experiment, tmp_path, monkeypatch
):
    """--test evaluates the exported folder; --log-probs lets a re-export skip the network."""
    import train.evaluate as ev

    ckpt, lm = experiment
    wav = espeak("the cat sat", tmp_path / "utt.wav")
    row = {"audio": wav.name, "duration": sf.info(wav).duration, "text": "the cat sat",
           "speaker": "espeak"}  # fmt: skip
    manifest = tmp_path / "test.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    runs = []
    real = ev.infer_log_probs
    monkeypatch.setattr(ev, "infer_log_probs", lambda *a, **k: runs.append(1) or real(*a, **k))
    args = ["--checkpoint", str(ckpt), "--lm", str(lm), "--quantize", "6",
            "--test", f"test={manifest}", "--log-probs", str(tmp_path / "lp")]  # fmt: skip
    main([*args, "--out", str(tmp_path / "a"), "--lm-weight", "0.5"])
    first = json.loads((tmp_path / "a" / "eval_results.json").read_text())["sets"]["test"]
    assert runs == [1] and (tmp_path / "lp" / "test.safetensors").is_file()
    assert "inference_cached" not in first and first["utterances"] == 1
    shipped = json.loads((tmp_path / "a" / "eval_results.json").read_text())
    assert shipped["model"]["folder"] == str(tmp_path / "a")  # not the export's temporary one
    assert "## Results" in (tmp_path / "a" / "README.md").read_text()
    assert (tmp_path / "a" / "wer.png").read_bytes().startswith(b"\x89PNG")  # drawn here too
    # the same weights with other LM settings: decoded from the kept output
    main([*args, "--out", str(tmp_path / "b"), "--lm-weight", "2.0"])
    again = json.loads((tmp_path / "b" / "eval_results.json").read_text())
    assert runs == [1] and again["sets"]["test"]["inference_cached"] is True
    assert again["decoding"]["lm_weight"] == 2.0
    greedy = again["sets"]["test"]["modes"]["greedy"]
    assert greedy["cer"] == first["modes"]["greedy"]["cer"]
    # other weights (a 4-bit export): the network runs again
    main([*args[:4], "--quantize", "4", *args[6:], "--out", str(tmp_path / "c")])
    assert runs == [1, 1]
