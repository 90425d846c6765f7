"""The training recipes' stage logic, run for real in bash with `python` stubbed to echo.

Each recipe is copied into a scratch tree (it works from the repository root it sits in) with
the corpora its optional stages test for, so what runs is decided by the recipe's own code.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

# The large recipe's training rounds in order, each with its clock (--max-hours): a new round
# adds its line here, and the tests below derive their stage lists, soups and switches from it.
ROUNDS = [
    ("deep", "1.25"),
    *[(f"deep{n}", "1.5") for n in range(2, 8)],
    ("deep8", "1.25"),
    ("deep9", "1.25"),
    ("gpu", "0.1122"),
    ("deep10", "1.25"),
    *[(f"deep{n}", "1.35") for n in range(11, 15)],
    ("deep15", "1.1"),
    *[(f"deep{n}", "1.35") for n in range(16, 29)],
    ("deep29", "1.1"),
    ("deep30", "1.0"),
]
LAST_ROUND = ROUNDS[-1][0]


def _number(stage):
    """A deep round's number (the deep stage is 1); None for the GPU round."""
    return None if stage == "gpu" else int(stage[4:] or 1)


def _soup(n):
    """The n-th soup's stage name: soup, soup2, soup3, ..."""
    return "soup" if n == 1 else f"soup{n}"


# The first soup is deep3's and deep4's means averaged; each round after deep4 (the GPU round
# between deep9 and deep10 among them) starts from the latest soup and makes the next with it.
SOUP_CHAIN = [
    (f"exp/ds2_large_{stage}", f"exp/ds2_large_{_soup(n)}/avg")
    for n, (stage, _) in enumerate(ROUNDS[4:], 1)
]
LAST_SOUP = len(SOUP_CHAIN) + 1


def _tree(tmp_path, *corpora):
    (tmp_path / "train").mkdir()
    shutil.copytree(ROOT / "train" / "recipes", tmp_path / "train" / "recipes")
    (tmp_path / "checkpoints").mkdir()
    for c in corpora:
        p = tmp_path / "data" / c / "train.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    # NO_PICO makes the probe for Pico (common.sh's `has_engine pico`) fail; NO_DEBIAN, those
    # for RHVoice, MBROLA and festvox.
    stub.write_text(
        '#!/bin/sh\ncase "$*" in *available_engines*pico*) [ -z "$NO_PICO" ] || exit 1 ;;\n'
        "*available_engines*rhvoice*|*available_engines*mbrola*|*available_engines*festvox*)"
        ' [ -z "$NO_DEBIAN" ] || exit 1 ;;\n'
        'esac\necho python "$@"\n'
    )
    stub.chmod(0o755)
    return tmp_path


def _run(tree, recipe, **env):
    e = {**os.environ, "PATH": f"{tree / 'bin'}:{os.environ['PATH']}", "JOBS": "2", **env}
    return subprocess.run(
        ["bash", str(tree / "train" / "recipes" / recipe)],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _train_runs(stdout):
    """(exp, init-from, its --train manifests, last --max-hours) of each train.train command."""
    runs = []
    for line in stdout.splitlines():
        if " -m train.train " not in line:
            continue
        exp = re.search(r"--exp (\S+)", line).group(1)
        init = re.search(r"--init-from (\S+)", line).group(1)
        train = re.findall(r"--train ((?:[^-\s]\S* ?)+)", line)[-1].split()
        hours = re.findall(r"--max-hours (\S+)", line)[-1]
        runs.append((exp, init, train, hours))
    return runs


def test_large_recipe_deep_stages_chain(tmp_path):
    tree = _tree(tmp_path, "piper", "kokoro", "kokoro_train")
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep")
    assert r.returncode == 0, r.stderr
    runs = _train_runs(r.stdout)
    assert [(exp, init) for exp, init, _, _ in runs] == [
        ("exp/ds2_large_deep", "exp/ds2_large_neural/avg"),
        ("exp/ds2_large_deep2", "exp/ds2_large_deep/avg"),
        ("exp/ds2_large_deep3", "exp/ds2_large_deep2/avg"),
        ("exp/ds2_large_deep4", "exp/ds2_large_deep3/avg"),
        *SOUP_CHAIN,
    ]
    # The GPU round trains on its own 36-h corpus (Pico included, 1 % for validation), its
    # flite and festival clips twice, for its 0.112-h clock.
    _, _, gpu_train, gpu_hours = runs.pop(9)
    assert gpu_train == ["data/synth_gpu/train.jsonl", "data/synth_gpu/natural.jsonl"]
    assert gpu_hours == "0.1122"
    synths = [line for line in r.stdout.splitlines() if " -m train.synth " in line]
    [gpu_synth] = [line for line in synths if "--out data/synth_gpu " in line]
    synths.remove(gpu_synth)
    assert "--hours 36 --seed 29 --heldout-seed 0 --valid-fraction 0.01" in gpu_synth
    assert "--engines espeak,flite,festival,pico " in gpu_synth
    # Each round draws from its own fresh corpus; Kokoro's extra clips join from deep2 on, and
    # SVOX Pico's voices (in the corpus and in the mix) from deep9 on.
    stages = [stage for stage, _ in ROUNDS if stage != "gpu"]
    pico = {stage for stage in stages if _number(stage) >= 9}
    # RHVoice and MBROLA, in the corpus and in the mix, from deep13 on; deep14 and the later
    # rounds add MBROLA's accented voices, and deep25 and the later ones festival's other Debian
    # voices (festvox_stage).
    festvox = {s for s in stages if _number(s) >= 25}
    debian = {s: ",rhvoice,mbrola,mbrola_accent" for s in stages if _number(s) >= 14}
    debian["deep13"] = ",rhvoice,mbrola"
    debian.update(dict.fromkeys(festvox, ",rhvoice,mbrola,mbrola_accent,festvox"))
    # deep11's and the later rounds' corpora add flite's voices at more mean F0s.
    f0s = {s: " --flite-f0 85 110 150 210" for s in stages if _number(s) >= 12}
    f0s["deep11"] = " --flite-f0 95 135 190"
    for (_, _, train, _), stage, synth in zip(runs, stages, synths, strict=True):
        assert f"data/adapt_{stage}/natural.jsonl" in train
        assert ("data/kokoro_train/train.jsonl" in train) == (stage != "deep")
        assert (f"data/adapt_{stage}/pico.jsonl" in train) == (stage in pico)
        assert (f"data/adapt_{stage}/debian.jsonl" in train) == (stage in debian)
        assert f"--out data/synth_{stage} " in synth
        engines = "espeak,flite,festival,pico" if stage in pico else "espeak,flite,festival"
        engines += debian.get(stage, "")
        f0 = f0s.get(stage, "")
        assert synth.endswith(f"--engines {engines}{f0}")
    assert "--out data/adapt_deep9/pico.jsonl --engines pico\n" in r.stdout
    assert "--out data/adapt_deep13/debian.jsonl --engines rhvoice,mbrola\n" in r.stdout
    debian_mixes = [line for line in r.stdout.splitlines() if "debian.jsonl --engines" in line]
    # deep15 and deep16 take twice the other rounds' hours of them, the festvox rounds 2 h
    more = {"deep15": "2.4", "deep16": "2.4", **dict.fromkeys(festvox, "2")}
    assert [line.split("--sample-hours ")[1].split()[0] for line in debian_mixes] == [
        more.get(stage, "1.2") for stage in stages if stage in debian
    ]
    assert debian_mixes[1].endswith(
        "--out data/adapt_deep14/debian.jsonl --engines rhvoice,mbrola,mbrola_accent"
    )
    assert [hours for *_, hours in runs] == [hours for stage, hours in ROUNDS if stage != "gpu"]
    # The peak lr (the last --lr of each round's command) of every CPU round: 2e-4 for deep and
    # deep2, 1.5e-4 from deep3 on, a third of it from deep26 on.
    lrs = dict(
        (
            re.search(r"--exp exp/ds2_large_(\S+)", line).group(1),
            re.findall(r"--lr (\S+)", line)[-1],
        )
        for line in r.stdout.splitlines()
        if " -m train.train " in line
    )
    assert {s: lrs[s] for s in stages} == {
        s: "2e-4" if _number(s) < 3 else "1.5e-4" if _number(s) < 26 else "5e-5" for s in stages
    }
    # The soups: deep3's and deep4's means averaged, which deep5 starts from; then that soup
    # and deep5's mean, which deep6 starts from, and so on; the last soup is what is tuned and
    # exported. A soup's folder holds no checkpoints, so nothing tries to average them.
    averages = [line for line in r.stdout.splitlines() if " -m train.average " in line]
    expected = [
        "--exp exp/ds2_large_deep3 --last 3 --out exp/ds2_large_deep3/avg",
        "--exp exp/ds2_large_deep4 --last 3 --out exp/ds2_large_deep4/avg",
        "exp/ds2_large_deep3/avg exp/ds2_large_deep4/avg --mixed --out exp/ds2_large_soup/avg",
    ]
    for n, (exp, soup) in enumerate(SOUP_CHAIN, 1):
        expected += [
            f"--exp {exp} --last 3 --out {exp}/avg",
            f"{soup} {exp}/avg --mixed --out exp/ds2_large_{_soup(n + 1)}/avg",
        ]
    assert [line.split("python -m train.average ")[1] for line in averages[-len(expected) :]] == (
        expected
    )
    assert "--exp exp/ds2_large_soup" not in r.stdout
    assert f"train.tune_lm --model exp/ds2_large_soup{LAST_SOUP}/avg " in r.stdout
    assert f"train.export --checkpoint exp/ds2_large_soup{LAST_SOUP}/avg " in r.stdout
    assert f"--loss-png exp/ds2_large_{LAST_ROUND}/loss.png " in r.stdout
    assert "without" not in r.stderr and "no Pico" not in r.stderr
    assert (tree / "checkpoints" / "DEFAULT").read_text().strip() == "ds2-large-synth"


def test_large_recipe_switches_and_overrides(tmp_path):
    tree = _tree(tmp_path, "piper", "kokoro")
    r = _run(
        tree,
        "ds2_large_synth.sh",
        STAGE="deep2",
        DEEP2="0",
        DEEP3_EXP="exp/mine",
        DEEP3_ARGS="--max-hours 0.1",
        **{_soup(n).upper(): "0" for n in range(1, LAST_SOUP + 1)},
    )
    assert r.returncode == 0, r.stderr
    runs = _train_runs(r.stdout)
    # deep2 is off, so deep3 starts from the deep stage's mean; no Kokoro clips were built.
    expected = [("exp/mine", "exp/ds2_large_deep/avg", "0.1")]
    for stage, hours in ROUNDS[3:]:
        expected.append((f"exp/ds2_large_{stage}", f"{expected[-1][0]}/avg", hours))
    assert [(exp, init, hours) for exp, init, _, hours in runs] == expected
    assert not any("kokoro" in m for run in runs for m in run[2])
    # without the soups each round starts from the last one's mean, and the last round's own
    # mean is tuned and shipped
    assert "--mixed" not in r.stdout
    assert f"train.average --exp exp/ds2_large_{LAST_ROUND} --last 3 " in r.stdout
    assert f"train.export --checkpoint exp/ds2_large_{LAST_ROUND}/avg " in r.stdout


def test_large_recipe_soup_needs_a_new_round(tmp_path):
    tree = _tree(tmp_path, "piper")
    # Without deep5 the second soup would only re-mix the first with deep4: it is skipped, and
    # without deep6 and the later rounds (the GPU round among them) so are the later soups, and
    # the first soup ships.
    off = {stage.upper(): "0" for stage, _ in ROUNDS[4:]}
    r = _run(tree, "ds2_large_synth.sh", STAGE="soup", **off)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("--mixed") == 1
    assert "train.export --checkpoint exp/ds2_large_soup/avg " in r.stdout
    assert "--exp exp/ds2_large_soup " not in r.stdout
    # Started at deep5, the first soup is taken as made and deep5 starts from it.
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep5")
    assert r.returncode == 0, r.stderr
    assert [(exp, init) for exp, init, _, _ in _train_runs(r.stdout)] == SOUP_CHAIN
    assert "exp/ds2_large_soup/avg exp/ds2_large_deep5/avg --mixed" in r.stdout


def test_large_recipe_stop_ends_the_run_early(tmp_path):
    tree = _tree(tmp_path, "piper", "kokoro_train")
    # One new round and its soup, from the shipped soup's folder, and nothing after them: no
    # tuning, no export, no new DEFAULT.
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep8", STOP="soup5")
    assert r.returncode == 0, r.stderr
    assert [(exp, init) for exp, init, _, _ in _train_runs(r.stdout)] == [
        ("exp/ds2_large_deep8", "exp/ds2_large_soup4/avg")
    ]
    averages = [line for line in r.stdout.splitlines() if " -m train.average " in line]
    assert [line.split("python -m train.average ")[1] for line in averages] == [
        "--exp exp/ds2_large_deep8 --last 3 --out exp/ds2_large_deep8/avg",
        "exp/ds2_large_soup4/avg exp/ds2_large_deep8/avg --mixed --out exp/ds2_large_soup5/avg",
    ]
    assert "train.tune_lm" not in r.stdout and "train.export" not in r.stdout
    assert not (tree / "checkpoints" / "DEFAULT").exists()
    # STOP=STAGE runs that one stage: the LM tuning alone here.
    r = _run(tree, "ds2_large_synth.sh", STAGE="tune", STOP="tune")
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("python ")] == [
        r.stdout.splitlines()[-1]
    ]
    assert f"-m train.tune_lm --model exp/ds2_large_soup{LAST_SOUP}/avg " in r.stdout
    assert "train.export" not in r.stdout


def test_large_recipe_heldout_only_builds_the_heldout_sets_and_a_rounds_inputs(tmp_path):
    tree = _tree(tmp_path)
    (tree / "train" / "setup_tts.sh").write_text("exit 0\n")  # no apt in a test
    (tree / "data" / "tts" / "kokoro-js" / "voices").mkdir(parents=True)  # no npm either

    def synths(**env):
        r = _run(tree, "ds2_large_synth.sh", STOP="data", **env)
        assert r.returncode == 0, r.stderr
        assert " -m train.train " not in r.stdout and " -m train.lm " not in r.stdout
        lines = [line for line in r.stdout.splitlines() if " -m train.synth " in line]
        return {re.search(r"--out (\S+)", line).group(1): line for line in lines}

    full, bare = synths(), synths(HELDOUT_ONLY="1")
    # The full build makes data/synth's 100 h with its default splits and Kokoro's 1-h corpus
    # with the voices it holds out, and the blends; a bare host, data/synth's held-out splits
    # alone (2 h: no training split) and the held-out Kokoro voices alone, without the blends.
    assert "--hours 100 --seed 0" in full["data/synth"]
    assert "--hours 2 --valid-fraction 0.5 --test-fraction 0.5 --seed 0" in bare["data/synth"]
    assert "--hours 1 --valid-fraction 0 --test-fraction 0.1 --seed 0" in full["data/kokoro"]
    assert "--hours 0.1 --valid-fraction 0 --test-fraction 1 --seed 0" in bare["data/kokoro"]
    assert "data/kokoro_blend" in full and "data/kokoro_blend" not in bare
    # What a round trains on is built alike.
    for out in ("data/synth_short", "data/piper", "data/kokoro_train"):
        assert bare[out] == full[out]


def test_large_recipe_export_takes_the_notes_and_history_figure(tmp_path):
    tree = _tree(tmp_path, "piper", "kokoro_train")
    r = _run(tree, "ds2_large_synth.sh", STAGE="export", NOTES="n.md", HISTORY="h.png")
    assert r.returncode == 0, r.stderr
    [export] = [line for line in r.stdout.splitlines() if " -m train.export " in line]
    assert export.startswith(f"python -m train.export --checkpoint exp/ds2_large_soup{LAST_SOUP}/")
    assert export.endswith(" --notes n.md --history-png h.png")
    r = _run(tree, "ds2_large_synth.sh", STAGE="export")
    assert r.returncode == 0, r.stderr
    assert "--notes" not in r.stdout and "--history-png" not in r.stdout


def test_large_recipe_pico_round_without_pico(tmp_path):
    tree = _tree(tmp_path, "piper")
    # Without py-nanotts the Pico round says so and goes on with the classic engines alone.
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep9", STOP="deep9", NO_PICO="1")
    assert r.returncode == 0, r.stderr
    assert "warning: deep9 runs without Pico: pip install -r train/requirements-tts.txt" in (
        r.stderr
    )
    [(exp, init, train, _)] = _train_runs(r.stdout)
    assert (exp, init) == ("exp/ds2_large_deep9", "exp/ds2_large_soup5/avg")
    assert not any("pico" in m for m in train)
    assert "--engines espeak,flite,festival\n" in r.stdout
    assert "--engines pico" not in r.stdout
    # So does the GPU round's corpus.
    r = _run(tree, "ds2_large_synth.sh", STAGE="gpu", STOP="gpu", NO_PICO="1")
    assert r.returncode == 0, r.stderr
    assert "warning: the GPU round's corpus has no Pico" in r.stderr
    [(exp, init, _, _)] = _train_runs(r.stdout)
    assert (exp, init) == ("exp/ds2_large_gpu", "exp/ds2_large_soup6/avg")
    assert "--out data/synth_gpu " in r.stdout
    assert "--engines espeak,flite,festival --save-every 10\n" in r.stdout


@pytest.mark.parametrize(
    "env, message",
    [
        ({"STOP": "nope"}, "STOP=nope is not one of:"),
        ({"STAGE": "tune", "STOP": "lm"}, "STOP=lm comes before STAGE=tune"),
    ],
)
def test_recipe_refuses_a_bad_stop(tmp_path, env, message):
    tree = _tree(tmp_path)
    r = _run(tree, "ds2_large_synth.sh", **env)
    assert r.returncode == 1
    assert message in r.stderr
    assert r.stdout == ""


def test_large_recipe_without_piper_skips_deep_rounds(tmp_path):
    tree = _tree(tmp_path)
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep")
    assert r.returncode == 0, r.stderr
    # Without Piper's (or Kokoro's) clips no deep round runs: the GPU round starts from the
    # adapt2 stage's mean, and their mean ships.
    assert [(exp, init) for exp, init, _, _ in _train_runs(r.stdout)] == [
        ("exp/ds2_large_gpu", "exp/ds2_large_adapt2/avg")
    ]
    assert "exp/ds2_large_adapt2/avg exp/ds2_large_gpu/avg --mixed" in r.stdout
    assert "train.export --checkpoint exp/ds2_large_soup7/avg " in r.stdout


@pytest.mark.parametrize("recipe", ["ds2_large_synth.sh", "ds2_small_synth.sh"])
def test_recipe_refuses_unknown_stage(tmp_path, recipe):
    tree = _tree(tmp_path)
    r = _run(tree, recipe, STAGE="nope")
    assert r.returncode == 1
    assert "STAGE=nope is not one of:" in r.stderr and "export" in r.stderr
    assert r.stdout == ""


def test_gpu_round_short_utterances_join_the_training_manifests(tmp_path):
    # round.sh's short-utterance corpus (gpu_round.sh's gpu_short_corpus): the same engines,
    # no split held out for validation or test, the evaluation transcripts in GPU_EXCLUDE kept
    # out; its manifest, in GPU_MORE, joins the corpus and its natural clips in training.
    tree = _tree(tmp_path)
    script = (
        "source train/recipes/common.sh; source train/recipes/gpu_round.sh\n"
        "GPU_EXCLUDE=(a.jsonl b.jsonl); GPU_SYNTH_ARGS=(--sentences s.gz)\n"
        "gpu_short_corpus data/short 30 0 16 6 timeout 45\n"
        "GPU_MORE=(data/short/train.jsonl)\n"
        "gpu_train exp/g init data/c 2069 15 --max-hours 0.1\n"
        "GPU_EXCLUDE=(); gpu_short_corpus data/short2 31 0 2 1\n"
    )
    e = {**os.environ, "PATH": f"{tree / 'bin'}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", script], cwd=tree, env=e, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    synths = [line for line in r.stdout.splitlines() if " -m train.synth " in line]
    assert synths[0] == (
        "python -m train.synth --out data/short --text short --hours 6 --seed 30 "
        "--heldout-seed 0 --valid-fraction 0 --test-fraction 0 --jobs 16 "
        "--engines espeak,flite,festival,pico --save-every 10 --exclude a.jsonl b.jsonl "
        "--sentences s.gz"
    )
    assert "--exclude" not in synths[1] and "--out data/short2 " in synths[1]
    [(exp, init, train, hours)] = _train_runs(r.stdout)
    assert (exp, init, hours) == ("exp/g", "init", "0.1")
    assert train == ["data/c/train.jsonl", "data/c/natural.jsonl", "data/short/train.jsonl"]


def test_large_recipe_debian_round_without_debian_voices(tmp_path):
    tree = _tree(tmp_path, "piper")
    # Without RHVoice and MBROLA the round says so and goes on with the other engines.
    r = _run(tree, "ds2_large_synth.sh", STAGE="deep13", STOP="deep13", NO_DEBIAN="1")
    assert r.returncode == 0, r.stderr
    assert "warning: deep13 runs without rhvoice: sudo bash train/setup_tts.sh" in r.stderr
    assert "warning: deep13 runs without mbrola: sudo bash train/setup_tts.sh" in r.stderr
    [(exp, init, train, _)] = _train_runs(r.stdout)
    assert (exp, init) == ("exp/ds2_large_deep13", "exp/ds2_large_soup10/avg")
    assert "data/adapt_deep13/debian.jsonl" not in train
    assert "--engines espeak,flite,festival,pico --flite-f0 85 110 150 210\n" in r.stdout


def test_large_recipe_without_the_last_round_ships_the_soup_before_it(tmp_path):
    # Without the last round the soup after it has no new round to mix in, and tuning and
    # export work on the soup before it (the shipped folder while that round trains).
    tree = _tree(tmp_path, "piper", "kokoro_train")
    last, before, before2 = (stage for stage, _ in ROUNDS[:-4:-1])
    r = _run(tree, "ds2_large_synth.sh", STAGE="tune", **{last.upper(): "0"})
    assert r.returncode == 0, r.stderr
    assert f"-m train.tune_lm --model exp/ds2_large_soup{LAST_SOUP - 1}/avg " in r.stdout
    assert f"train.export --checkpoint exp/ds2_large_soup{LAST_SOUP - 1}/avg " in r.stdout
    assert f"--loss-png exp/ds2_large_{before}/loss.png " in r.stdout
    assert f"soup{LAST_SOUP}" not in r.stdout
    # Without the last two rounds, the soup before those.
    r = _run(tree, "ds2_large_synth.sh", STAGE="tune", **{last.upper(): "0", before.upper(): "0"})
    assert r.returncode == 0, r.stderr
    assert f"train.export --checkpoint exp/ds2_large_soup{LAST_SOUP - 2}/avg " in r.stdout
    assert f"--loss-png exp/ds2_large_{before2}/loss.png " in r.stdout
    assert f"soup{LAST_SOUP - 1}" not in r.stdout and f"soup{LAST_SOUP}" not in r.stdout
    # The README's switches: DEEP28=0 DEEP29=0 DEEP30=0 ships soup25 (session 48's), and
    # DEEP24=0 to DEEP30=0 soup21 (session 44's), with no round trained.
    for off, soup in (
        ("DEEP28 DEEP29 DEEP30", "soup25"),
        ("DEEP24 DEEP25 DEEP26 DEEP27 DEEP28 DEEP29 DEEP30", "soup21"),
    ):
        r = _run(tree, "ds2_large_synth.sh", STAGE="tune", **dict.fromkeys(off.split(), "0"))
        assert r.returncode == 0, r.stderr
        assert f"train.export --checkpoint exp/ds2_large_{soup}/avg " in r.stdout
        assert " -m train.train " not in r.stdout
    # Without deep15 and the later rounds neither soup13 nor any later soup is made: soup12
    # (session 39's).
    off = {stage.upper(): "0" for stage, _ in ROUNDS if (_number(stage) or 0) >= 15}
    r = _run(tree, "ds2_large_synth.sh", STAGE="tune", **off)
    assert r.returncode == 0, r.stderr
    assert "train.export --checkpoint exp/ds2_large_soup12/avg " in r.stdout
    assert "--loss-png exp/ds2_large_deep14/loss.png " in r.stdout
    assert not any(f"soup{n}" in r.stdout for n in range(13, LAST_SOUP + 1))
