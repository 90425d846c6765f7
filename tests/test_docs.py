"""The README quotes the figures the shipped checkpoints were measured at, not older ones.

Each shipped folder's ``eval_results.json`` is written by ``train.export --test`` with the
weights it ships; a model retrained and exported without its README rows and status note
updated fails here.
"""

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SHIPPED = sorted(p.parent.name for p in (REPO / "checkpoints").glob("*/eval_results.json"))
TEST_SET = "test_unseen_voice"


def measured(name: str) -> dict[str, tuple[float, float]]:
    """{mode: (CER %, WER %)} on the unseen-voice test set, as exported."""
    results = json.loads((REPO / "checkpoints" / name / "eval_results.json").read_text())
    modes = results["sets"][TEST_SET]["modes"]
    return {m: (100 * r["cer"], 100 * r["wer"]) for m, r in modes.items()}


def table_rows() -> list[list[str]]:
    """The cells of every README table row for the unseen-voice test set."""
    rows = [
        line for line in README.splitlines() if line.startswith("|") and f"`{TEST_SET}`" in line
    ]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def same(cell: str, cer: float, wer: float) -> bool:
    """Whether a ``CER / WER`` cell shows these figures at the cell's own precision."""
    m = re.fullmatch(r"(\d+\.(\d+)) / (\d+\.\d+)", cell)
    if not m:
        return False
    digits = len(m[2])
    return m[1] == f"{cer:.{digits}f}" and m[3] == f"{wer:.{digits}f}"


@pytest.mark.skipif(not SHIPPED, reason="no checkpoint ships with eval_results.json")
@pytest.mark.parametrize("name", SHIPPED)
def test_model_table_has_the_shipped_figures(name):
    got = measured(name)
    # columns: split, utterances, greedy, beam, beam + LM
    wanted = [got[m] for m in ("greedy", "beam", "beam_lm")]
    rows = table_rows()
    assert rows, f"README has no table row for `{TEST_SET}`"
    assert any(all(same(c, *w) for c, w in zip(row[2:5], wanted)) for row in rows), (
        f"no README row for `{TEST_SET}` shows {name}'s exported figures "
        + ", ".join(f"{c:.2f} / {w:.2f}" for c, w in wanted)
        + "; rows: "
        + "; ".join(" | ".join(r[2:5]) for r in rows)
    )


def test_status_note_quotes_the_default_model():
    default = (REPO / "checkpoints" / "DEFAULT").read_text().strip()
    if default not in SHIPPED:
        pytest.skip(f"{default} ships without eval_results.json")
    note = README[README.index("> **Model status.**") :].split("\n\n", 1)[0]
    note = " ".join(line.lstrip("> ") for line in note.splitlines())
    got = measured(default)
    for what, value in [
        ("greedy CER", got["greedy"][0]),
        ("WER", got["greedy"][1]),
        ("LM WER", got["beam_lm"][1]),
    ]:
        # to one decimal, or two where one would blur a target (7.98 % against 8 %)
        assert f"{what} {value:.1f} %" in note or f"{what} {value:.2f} %" in note, (
            f"the README's model status should give {default}'s {what} {value:.1f} %: {note}"
        )
