"""The CTC training loop: one step, exact resume, filtering, sampling, fine-tuning set-ups."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ds2
from ds2.features import FeatureConfig
from ds2.model import DeepSpeech2
from ds2.vocab import Vocabulary
from tests.utils import espeak, tiny_config
from train import checkpointing as ckpt
from train.data import (
    AugmentConfig,
    BucketBatchSampler,
    SpeechDataset,
    augment_waveform,
    collate,
    ctc_min_frames,
    prepare_utterances,
    read_manifest,
)
from train.train import (
    TrainConfig,
    augment_config,
    ctc_loss,
    lr_at,
    main,
    parse_args,
    read_toml,
    replace_head,
    resolve_precision,
    validation_due,
)

SENTENCES = [
    "the cat sat on the mat",
    "a big red dog ran home",
    "green trees in the sun",
    "she reads old books",
    "we walk to the river",
    "time to go to bed",
    "blue water and white sand",
    "my hat is very small",
    "birds sing at night",
    "open the door please",
    "he likes hot soup",
    "five fish swim fast",
    "the moon is bright",
    "cold wind from the north",
    "bring me a cup of tea",
    "jump over the fence",
]


def make_corpus(folder: Path, n: int, speed: int = 170) -> Path:
    """``n`` espeak-ng utterances of SENTENCES and their manifest ``folder/train.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(SENTENCES[:n]):
        wav = espeak(text, folder / f"utt{i:02d}.wav", speed=speed)
        audio = ds2.load_audio(wav)
        rows.append(
            {
                "audio": wav.name,
                "duration": len(audio) / 16000,
                "text": text,
                "speaker": "espeak-en-us",
            }
        )
    manifest = folder / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def tiny_args(manifest: Path, exp: Path, *extra: str) -> list[str]:
    """Command line of a seconds-long CPU run of the tiny model."""
    overrides = {k: v for k, v in tiny_config().to_dict().items() if k != "vocab_size"}
    return [
        "--train",
        str(manifest),
        "--exp",
        str(exp),
        "--model-overrides",
        json.dumps(overrides),
        "--batch-seconds",
        "6",
        "--num-workers",
        "0",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--warmup-steps",
        "2",
        "--max-steps",
        "6",
        "--log-every",
        "1",
        "--eval-every-steps",
        "0",
        "--eval-every-minutes",
        "0",
        "--save-every-steps",
        "0",
        "--no-tensorboard",
        *extra,
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), 6)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_one_step_gives_finite_loss_and_gradients(corpus):
    vocab, fcfg = Vocabulary(), FeatureConfig()
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config()).train()
    items, dropped = prepare_utterances(read_manifest(corpus), vocab, fcfg, model.cfg)
    assert len(items) == 6 and not dropped
    batch = collate([SpeechDataset(items, fcfg)[i] for i in range(3)])
    assert batch.features.shape[:2] == (3, 201)
    log_probs, out_lengths = model(batch.features, batch.lengths)
    loss = ctc_loss(log_probs, out_lengths, batch)
    assert torch.isfinite(loss) and 0.5 < loss.item() < 50  # nats per character
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_resume_continues_exactly(corpus, tmp_path):
    """6 steps straight == 3 steps, stop, --resume, 3 more (weights and optimizer, bit for bit)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    main(tiny_args(corpus, straight))
    main(tiny_args(corpus, split, "--stop-at-step", "3"))
    half = ckpt.load_trainer_state(split / "checkpoints" / "last")[0]
    assert half["step"] == 3
    main(tiny_args(corpus, split, "--resume"))

    a, b = straight / "checkpoints" / "last", split / "checkpoints" / "last"
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    sa, sb = load_file(str(a / ckpt.STATE_TENSORS)), load_file(str(b / ckpt.STATE_TENSORS))
    for k in (k for k in sa if k.startswith("optim/")):
        assert torch.equal(sa[k], sb[k]), k
    meta_a, meta_b = ckpt.load_trainer_state(a)[0], ckpt.load_trainer_state(b)[0]
    assert meta_a["step"] == meta_b["step"] == 6
    assert (meta_a["epoch"], meta_a["batch_in_epoch"]) == (
        meta_b["epoch"],
        meta_b["batch_in_epoch"],
    )
    # The folder is an ordinary ds2 checkpoint with training metadata.
    loaded = ds2.load_folder(b)
    assert loaded.config["training"]["steps"] == 6
    assert loaded.config["training"]["train_manifests"] == [str(corpus)]
    # Audio heard is counted across the resume exactly as in the straight run.
    seen = ds2.load_folder(a).config["training"]["audio_hours_seen"]
    assert seen > 0 and loaded.config["training"]["audio_hours_seen"] == seen
    assert meta_a["audio_seconds"] == meta_b["audio_seconds"] > 0
    # Training moved the weights away from the shared initialisation.
    torch.manual_seed(1234)  # the run's seed: these are its initial weights
    init = DeepSpeech2(loaded.model.cfg)
    assert not torch.equal(init.head.weight, wa["head.weight"])
    # The log of the resumed run has each step once.
    steps = [
        e["step"]
        for e in map(json.loads, (split / "log.jsonl").read_text().splitlines())
        if e["event"] == "train"
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_peak_lr_survives_a_restart_at_a_lower_lr(corpus, tmp_path):
    """The record's peak_lr is the highest lr applied over every resume, not the last --lr; a
    checkpoint from before the trainer kept it gets it from the run's log."""
    from ds2.checkpoint import stage_summary

    exp = tmp_path / "exp"
    main(tiny_args(corpus, exp, "--lr", "2e-3", "--stop-at-step", "3"))
    last = exp / "checkpoints" / "last"
    first = ckpt.load_trainer_state(last)[0]["peak_lr"]
    assert first == pytest.approx(2e-3)  # warm-up is 2 steps: step 1 ran at the peak
    main(tiny_args(corpus, exp, "--resume", "--lr", "5e-4", "--stop-at-step", "4"))
    training = ds2.load_folder(last).config["training"]
    assert training["config"]["lr"] == 5e-4 and training["peak_lr"] == first
    assert stage_summary(training)["lr"] == first

    meta_file = last / ckpt.STATE_JSON  # an old checkpoint: no peak_lr nor audio in its state
    meta = json.loads(meta_file.read_text())
    del meta["peak_lr"], meta["audio_seconds"]
    meta_file.write_text(json.dumps(meta))
    with open(exp / "log.jsonl", "a") as f:  # a crash logged past the checkpoint: not its own
        f.write(json.dumps({"event": "train", "step": 5, "lr": 9e-3, "audio_s_per_s": 1e6,
                            "elapsed": 1e4}) + "\n")  # fmt: skip
    main(tiny_args(corpus, exp, "--resume", "--lr", "5e-4"))
    training = ds2.load_folder(last).config["training"]
    assert training["steps"] == 6 and training["peak_lr"] == pytest.approx(2e-3)
    # The crashed step's 2,800 h are left out. The card rounds to 0.01 h, which a run of seconds
    # can fall under, so the unrounded count in the trainer state is what is checked.
    assert training["audio_hours_seen"] < 1
    assert 0 < ckpt.load_trainer_state(last)[0]["audio_seconds"] < 3600


def test_resume_keeps_saved_schedule_over_preset(corpus, tmp_path, capsys):
    """An extended --max-steps is saved: a later --resume with the original preset keeps it."""
    exp = tmp_path / "exp"
    main(tiny_args(corpus, exp, "--stop-at-step", "3"))  # a 6-step run, stopped at 3
    main(tiny_args(corpus, exp, "--resume", "--max-steps", "8", "--stop-at-step", "5"))
    last = exp / "checkpoints" / "last"
    meta = ckpt.load_trainer_state(last)[0]
    assert (meta["step"], meta["config"]["max_steps"]) == (5, 8)
    preset = tmp_path / "preset.toml"
    preset.write_text("[schedule]\nmax_steps = 6\nwarmup_steps = 2\n")
    capsys.readouterr()
    main(["--config", str(preset), "--exp", str(exp), "--resume"])
    meta = ckpt.load_trainer_state(last)[0]
    assert (meta["step"], meta["config"]["max_steps"]) == (8, 8)
    # Everything else also came from the checkpoint, not from the defaults.
    assert meta["config"]["batch_seconds"] == 6 and meta["config"]["train"] == [str(corpus)]
    err = capsys.readouterr().err
    assert "'max_steps': 6" in err and "ignored" in err
    # A flag still changes the recipe: extend again to 10.
    main(["--config", str(preset), "--exp", str(exp), "--resume", "--max-steps", "10"])
    meta = ckpt.load_trainer_state(last)[0]
    assert (meta["step"], meta["config"]["max_steps"]) == (10, 10)


def test_interrupted_folder_swap_recovers(tmp_path, tiny_checkpoint):
    """A crash between the two renames of a checkpoint swap leaves the old copy findable."""
    model = ds2.load_folder(tiny_checkpoint).model
    last = tmp_path / "last"
    ckpt.save_checkpoint(
        last, model, FeatureConfig(), Vocabulary(), training={}, trainer_state={"step": 7}
    )
    last.rename(tmp_path / ".old-last")  # as if killed after moving the old one away
    found = ckpt.resolve_resume_folder(last)
    assert found == tmp_path / ".old-last"
    assert ckpt.load_trainer_state(found)[0]["step"] == 7
    ckpt.save_checkpoint(
        last, model, FeatureConfig(), Vocabulary(), training={}, trainer_state={"step": 8}
    )
    assert ckpt.load_trainer_state(ckpt.resolve_resume_folder(last))[0]["step"] == 8
    assert not (tmp_path / ".old-last").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_compacted_optimizer_state_resumes_close(tmp_path):
    """bf16 moments (the resume point kept in git) load back as fp32, within bf16 precision."""
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model(torch.randn(2, 201, 50), torch.tensor([50, 40]))[0].sum().backward()
    opt.step()
    folder = ckpt.save_checkpoint(
        tmp_path / "last", model, FeatureConfig(), Vocabulary(),
        training={}, trainer_state={"step": 1}, optimizer=opt,
    )  # fmt: skip
    size = (folder / ckpt.STATE_TENSORS).stat().st_size
    ckpt.main([str(folder)])
    assert (folder / ckpt.STATE_TENSORS).stat().st_size < 0.6 * size
    meta, tensors = ckpt.load_trainer_state(folder)
    assert meta["step"] == 1 and meta["optimizer_moments_dtype"] == "bfloat16"
    assert tensors["rng/torch"].dtype == torch.uint8  # RNG states untouched
    opt2 = torch.optim.AdamW(model.parameters(), lr=5.0)
    opt2.load_state_dict(ckpt.unflatten_optimizer(tensors, meta["optimizer"]))
    for p in model.parameters():
        a, b = opt.state[p], opt2.state[p]
        assert torch.equal(a["step"], b["step"])
        for name in ("exp_avg", "exp_avg_sq"):
            assert b[name].dtype == torch.float32
            torch.testing.assert_close(b[name], a[name], rtol=1e-2, atol=1e-30)


def test_optimizer_state_round_trips_through_tensors():
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model(torch.randn(2, 201, 50), torch.tensor([50, 40]))[0].sum().backward()
    opt.step()
    tensors, meta = ckpt.flatten_optimizer(opt.state_dict())
    json.dumps(meta)  # no tensors or tuples left in the metadata
    opt2 = torch.optim.AdamW(model.parameters(), lr=5.0)
    opt2.load_state_dict(ckpt.unflatten_optimizer(tensors, meta))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for pid in s1["state"]:
        for k, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][k])


def test_label_longer_than_output_is_dropped_and_counted(tmp_path, corpus):
    rows = read_manifest(corpus)
    cfg = tiny_config()
    # 0.5 s gives 26 output frames: 30 characters cannot be aligned, 20 can; "aab" needs 4 frames.
    rows += [
        {"audio": rows[0]["audio"], "duration": 0.5, "text": "x" * 30, "speaker": "s"},
        {"audio": rows[0]["audio"], "duration": 0.5, "text": "abcdefghij" * 2, "speaker": "s"},
        {"audio": rows[0]["audio"], "duration": 0.5, "text": "ab1", "speaker": "s"},
        {"audio": rows[0]["audio"], "duration": 40.0, "text": "long", "speaker": "s"},
    ]
    items, dropped = prepare_utterances(rows, Vocabulary(), FeatureConfig(), cfg, max_duration=30)
    assert int(cfg.output_lengths(FeatureConfig().n_frames(8000))) == 26
    assert dropped == {"label_too_long": 1, "bad_chars": 1, "too_long": 1}
    assert len(items) == 7
    assert ctc_min_frames([3, 3, 4]) == 4

    manifest = tmp_path / "with_bad.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    exp = tmp_path / "exp"
    main(tiny_args(manifest, exp, "--max-steps", "1", "--max-duration", "30"))
    data = next(
        e
        for e in map(json.loads, (exp / "log.jsonl").read_text().splitlines())
        if e["event"] == "data"
    )
    assert data["dropped"] == {"label_too_long": 1, "bad_chars": 1, "too_long": 1}
    assert data["train_utterances"] == 7


def test_sortagrad_then_shuffled_buckets():
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.5, 15.0, size=300)
    s = BucketBatchSampler(durations, batch_seconds=60, seed=3)
    first = [i for b in s.batches(0) for i in b]
    assert np.all(np.diff(durations[first]) >= 0)  # epoch 0: shortest first
    later = s.batches(1)
    flat = [i for b in later for i in b]
    assert not np.all(np.diff(durations[flat]) >= 0)  # later epochs: shuffled batch order
    assert later != s.batches(2)  # ...differently every epoch
    assert later == BucketBatchSampler(durations, batch_seconds=60, seed=3).batches(1)
    # Buckets stay length-homogeneous: most batches span a narrow range of durations.
    spans = [durations[b].max() / durations[b].min() for b in later if len(b) > 1]
    assert np.median(spans) < 1.5
    no_sorta = BucketBatchSampler(durations, batch_seconds=60, seed=3, sortagrad=False)
    flat0 = [i for b in no_sorta.batches(0) for i in b]
    assert not np.all(np.diff(durations[flat0]) >= 0)


@pytest.mark.parametrize("world_size", [1, 3])
def test_bucket_sampler_covers_every_utterance_once(world_size):
    rng = np.random.default_rng(1)
    durations = rng.uniform(0.3, 12.0, size=257)
    for epoch in range(3):
        seen = []
        per_rank = []
        for rank in range(world_size):
            s = BucketBatchSampler(
                durations, 50, max_batch_size=16, seed=5, rank=rank, world_size=world_size
            )
            s.set_epoch(epoch)
            batches = [[i for _, i in b] for b in s]
            assert len(batches) == len(s)
            per_rank.append(len(batches))
            for b in batches:
                assert len(b) <= 16
                assert len(b) == 1 or len(b) * durations[b].max() <= 50 + 1e-9
            seen += [i for b in batches for i in b]
        assert len(set(per_rank)) == 1  # every rank runs the same number of steps
        if world_size == 1:
            assert sorted(seen) == list(range(257))
        else:  # padding repeats a few batches so ranks stay in step; nobody is left out
            assert set(seen) == set(range(257))
            assert len(seen) - 257 <= 16 * (world_size - 1)
    # Skipping the first k batches (resume) yields the remaining ones of that epoch.
    s = BucketBatchSampler(durations, 50, seed=5)
    full = s.batches(2)
    s.set_epoch(2, start_batch=4)
    assert [[i for _, i in b] for b in s] == full[4:]
    # len() counts what is left; epoch_length() the whole epoch (progress = start / length).
    assert len(s) == len(full) - 4 and s.epoch_length() == len(full)


def test_init_from_with_new_vocab_and_frozen_convs(corpus, tmp_path, tiny_checkpoint):
    """Fine-tuning set-up: new head for another alphabet, shared symbols kept, convs untouched."""
    old = ds2.load_folder(tiny_checkpoint)
    new_vocab = Vocabulary(
        (
            "<blank>",
            " ",
            "a",
            "e",
            "t",
            "o",
            "s",
            "h",
            "n",
            "r",
            "d",
            "i",
            "l",
            "m",
            "u",
            "w",
            "g",
            "y",
            "b",
            "c",
            "p",
            "f",
            "k",
            "v",
            "j",
        )
    )
    swapped = replace_head(old.model, old.vocab, new_vocab)
    assert swapped.head.weight.shape[0] == len(new_vocab)
    row_old, row_new = old.vocab.tokens.index("t"), new_vocab.tokens.index("t")
    assert torch.equal(swapped.head.weight[row_new], old.model.head.weight[row_old])

    exp = tmp_path / "ft"
    chars = "".join(new_vocab.tokens[1:])
    main(
        tiny_args(
            corpus,
            exp,
            "--init-from",
            str(tiny_checkpoint),
            "--new-vocab",
            "--vocab",
            chars,
            "--freeze-convs",
            "--max-steps",
            "3",
            "--lr",
            "3e-3",
        )
    )
    tuned = ds2.load_folder(exp / "checkpoints" / "last")
    assert tuned.vocab == new_vocab
    assert tuned.model.head.out_features == len(new_vocab)
    before, after = old.model.state_dict(), tuned.model.state_dict()
    for k in before:
        if k.startswith("convs."):  # weights and BatchNorm statistics alike
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before["rnn.weight_ih_l0"], after["rnn.weight_ih_l0"])
    assert tuned.config["training"]["init_from"]["spec"] == str(tiny_checkpoint)


def test_freeze_rnn_layers_trains_only_the_layers_above(corpus, tmp_path):
    """--freeze-rnn-layers 1 keeps the convs and both directions of layer 0 as they were."""
    import dataclasses

    from ds2.checkpoint import save_pretrained

    torch.manual_seed(0)
    two = dataclasses.replace(tiny_config(), rnn_layers=2)
    parent = save_pretrained(
        tmp_path / "two", DeepSpeech2(two).eval(), FeatureConfig(), Vocabulary()
    )
    exp = tmp_path / "ft"
    args = tiny_args(corpus, exp, "--init-from", str(parent), "--freeze-rnn-layers", "1")
    main([*args, "--max-steps", "3", "--lr", "3e-3"])
    before = ds2.load_folder(parent).model.state_dict()
    after = ds2.load_folder(exp / "checkpoints" / "last").model.state_dict()
    for k in before:
        frozen = k.startswith("convs.") or k.endswith(("_l0", "_l0_reverse"))
        assert torch.equal(before[k], after[k]) == frozen, k

    with pytest.raises(SystemExit, match="the model has 2 recurrent layers"):
        main([*tiny_args(corpus, tmp_path / "bad", "--init-from", str(parent)),
              "--freeze-rnn-layers", "3"])  # fmt: skip


def test_a_fine_tune_records_the_runs_before_it_across_a_resume(corpus, tmp_path):
    """--init-from copies the parent's stages into the record; a --resume keeps them."""
    from ds2.checkpoint import stage_summary, training_totals
    from tests.utils import make_tiny_checkpoint

    base = {"steps": 900, "elapsed_hours": 2.0, "audio_hours_seen": 40.0, "train_hours": 10.0,
            "precision": "fp32", "config": {"lr": 1e-3}, "init_from": None}  # fmt: skip
    parent = make_tiny_checkpoint(tmp_path / "parent", **base)
    exp = tmp_path / "ft"
    args = ("--init-from", str(parent), "--max-steps", "4")
    main(tiny_args(corpus, exp, *args, "--stop-at-step", "2"))
    main(tiny_args(corpus, exp, *args, "--resume"))
    training = ds2.load_folder(exp / "checkpoints" / "last").config["training"]
    assert training["steps"] == 4
    assert training["earlier_stages"] == [stage_summary(base)]
    totals = training_totals(training)
    assert totals["stages"] == 2 and totals["complete"] and totals["steps"] == 904

    # a model with no training record: its history is unknown, and the sums say so
    blank = make_tiny_checkpoint(tmp_path / "blank")
    main(tiny_args(corpus, tmp_path / "ft2", "--init-from", str(blank), "--max-steps", "1"))
    training = ds2.load_folder(tmp_path / "ft2" / "checkpoints" / "last").config["training"]
    assert training["earlier_stages"] == []
    assert not training_totals(training)["complete"]


def test_lr_schedule_warms_up_holds_and_decays():
    cfg = TrainConfig(lr=1e-3, warmup_steps=100, hold_fraction=0.5, min_lr_ratio=0.1)
    assert lr_at(cfg, 0, 0.0) == pytest.approx(1e-5)
    assert lr_at(cfg, 99, 0.01) == pytest.approx(1e-3)
    assert lr_at(cfg, 400, 0.4) == pytest.approx(1e-3)  # held
    assert lr_at(cfg, 750, 0.75) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half-way down
    assert lr_at(cfg, 1000, 1.0) == pytest.approx(1e-4)


def test_auto_precision_is_bf16_only_where_it_is_native():
    assert resolve_precision("auto", cuda=True, fast_cpu_bf16=False) == "bf16"
    assert resolve_precision("auto", cuda=False, fast_cpu_bf16=True) == "bf16"  # AMX, AVX512-BF16
    assert resolve_precision("auto", cuda=False, fast_cpu_bf16=False) == "fp32"  # emulated: slow
    assert resolve_precision("fp32", cuda=True, fast_cpu_bf16=True) == "fp32"  # asked for
    assert resolve_precision("bf16", cuda=False, fast_cpu_bf16=False) == "bf16"
    with pytest.raises(ds2.DS2Error, match="fp16"):
        resolve_precision("fp16", cuda=True, fast_cpu_bf16=True)


def test_presets_parse_and_flags_override(tmp_path):
    for name in ("ds2_small", "ds2_large"):
        path = Path(__file__).parents[1] / "train" / "configs" / f"{name}.toml"
        flat = read_toml(path)
        assert ds2.preset(flat["preset"])  # a real model preset
        cfg, _, _, _ = parse_args(["--config", str(path), "--exp", "x", "--lr", "0.5"])
        assert cfg.lr == 0.5
        assert cfg.batch_seconds == flat["batch_seconds"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlearning_rate = 1\n")
    with pytest.raises(ds2.DS2Error, match="learning_rate"):
        read_toml(bad)


def test_speed_perturbation_makes_pseudo_talkers_reproducibly():
    """--speed-prob plays a clip 0.9-1.1x as fast: length and pitch move together, per seed."""
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 300.0 * np.arange(sr) / sr)).astype(np.float32)
    quiet = dict(gain_db=0.0, noise_prob=0.0)
    same = augment_waveform(tone, AugmentConfig(**quiet), np.random.default_rng(0))
    np.testing.assert_array_equal(same, tone)  # speed_prob 0: untouched
    cfg = AugmentConfig(**quiet, speed_prob=1.0)
    factors = set()
    for seed in range(6):
        y = augment_waveform(tone, cfg, np.random.default_rng(seed))
        factor = sr / len(y)
        assert 0.9 - 1e-3 <= factor <= 1.1 + 1e-3
        peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * sr / len(y)
        assert peak_hz == pytest.approx(300.0 * factor, abs=3)
        np.testing.assert_array_equal(y, augment_waveform(tone, cfg, np.random.default_rng(seed)))
        factors.add(round(factor, 3))
    assert len(factors) > 3  # drawn, not fixed
    with pytest.raises(SystemExit, match="--speed-prob is a share of clips"):
        main(["--exp", "x", "--train", "m.jsonl", "--max-steps", "1", "--speed-prob", "1.5"])


def test_speed_range_flags_reach_the_clips(tmp_path, corpus):
    """--speed-min / --speed-max set the factors drawn; a range that is no range stops early."""
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 300.0 * np.arange(sr) / sr)).astype(np.float32)
    cfg, *_ = parse_args(["--exp", "x", "--speed-prob", "1", "--speed-min", "1.2",
                          "--speed-max", "1.25"])  # fmt: skip
    aug = dataclasses.replace(augment_config(cfg), gain_db=0.0, noise_prob=0.0)
    for seed in range(4):
        factor = sr / len(augment_waveform(tone, aug, np.random.default_rng(seed)))
        assert 1.2 - 1e-3 <= factor <= 1.25 + 1e-3
    base = ["--exp", str(tmp_path / "e"), "--train", str(corpus), "--max-steps", "1"]
    for lo, hi in [("1.2", "1.1"), ("0.3", "1.1"), ("0.9", "2.5")]:
        with pytest.raises(SystemExit, match=f"--speed-min and --speed-max .* got {lo} and {hi}"):
            main([*base, "--speed-min", lo, "--speed-max", hi])
    assert not (tmp_path / "e" / "checkpoints").exists()  # stopped before any work


def test_all_audio_missing_fails_loudly_instead_of_looping(tmp_path, corpus):
    """A manifest whose files all vanished (moved corpus) stops with the reason, not a spin."""
    rows = read_manifest(corpus)
    for r in rows:
        r["audio"] = str(tmp_path / "gone" / Path(r["audio"]).name)
    manifest = tmp_path / "moved.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SystemExit, match="no batch of a whole epoch could be read.*gone"):
        main(tiny_args(manifest, tmp_path / "exp", "--max-steps", "5"))


def test_clock_validation_waits_for_a_step_scheduled_one_close_by():
    cfg = TrainConfig(eval_every_steps=500, eval_every_minutes=30.0)
    half_hour = 30 * 60
    assert validation_due(8000, 10.0, cfg)  # on the step schedule, whatever the clock
    assert not validation_due(7900, half_hour - 1, cfg)  # neither due
    assert validation_due(7900, half_hour, cfg)  # the clock: the next by steps is 100 away
    assert not validation_due(7998, 2 * half_hour, cfg)  # 2 steps from 8000: wait for it
    assert validation_due(7974, half_hour, cfg)  # 26 steps away (more than 5% of 500)
    assert not validation_due(7975, half_hour, cfg)  # 25 away: wait
    clock_only = TrainConfig(eval_every_steps=0, eval_every_minutes=30.0)
    assert validation_due(7998, half_hour, clock_only)
    assert not validation_due(7998, half_hour - 1, clock_only)
    steps_only = TrainConfig(eval_every_steps=500, eval_every_minutes=0.0)
    assert not validation_due(7998, 10 * half_hour, steps_only)
