"""Word and character error rates of a model on test manifests, per decoding mode.

    python -m train.evaluate --model checkpoints/ds2-small --manifest data/test.jsonl \\
        --modes greedy,beam,beam_lm --out exp/eval

The network runs once per set, in batches of similar-length utterances; every decoding mode
then works on the cached log-probabilities, one utterance at a time:

* ``greedy``: best path, no search;
* ``beam``: CTC prefix beam search without lexicon or LM;
* ``beam_lm``: beam search constrained to a lexicon and scored with the word LM, with the
  model's tuned ``lm_weight`` / ``word_score`` unless given.

``OUT/results.json`` holds the numbers and the error analysis (most common word substitutions,
deletions and insertions, the same at character level, and the worst utterances);
``OUT/results.md`` is the same as tables, ``OUT/wer.png`` a bar chart, ``OUT/voices.png`` the
CER per voice of the sets that name their voices, and ``OUT/hyps/`` holds every reference and
hypothesis. :func:`evaluate` is the same as a function. ``--log-probs DIR`` keeps each set's
network output in ``DIR``, so a second evaluation of the same model on the same sets (another LM,
other decoder weights) only decodes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from ds2.audio import load_audio
from ds2.checkpoint import LoadedModel
from ds2.decoding import DEFAULT_BEAM_WIDTH
from ds2.errors import AudioError, DecoderError, DS2Error
from ds2.features import compute_features, pad_features
from ds2.text import normalize_text
from train.manifest import audio_fingerprint, audio_hashes, group_key

MODES = ("greedy", "beam", "beam_lm")
BATCH_SECONDS = 160.0  # padded audio seconds per forward pass; ~1 GB of activations for ds2-small
TOP_ERRORS = 15  # rows in each error table
WORST = 10  # worst utterances listed per set and mode


# ------------------------------------------------------------------------------------------
# Metrics on (reference, hypothesis) pairs


def _jiwer():
    import jiwer  # a dev/training dependency only

    return jiwer


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus-level WER and CER (fractions) with the counts behind them.

    Both are (substitutions + deletions + insertions) / reference length, summed over all
    utterances, so long utterances weigh more (the standard definition). CER counts the
    spaces between words as characters.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("no utterances to score")
    jiwer = _jiwer()
    w = jiwer.process_words(list(refs), list(hyps))
    c = jiwer.process_characters(list(refs), list(hyps))
    ref_words = w.hits + w.substitutions + w.deletions
    ref_chars = c.hits + c.substitutions + c.deletions
    return {
        "wer": float(w.wer),
        "cer": float(c.cer),
        "ref_words": ref_words,
        "substitutions": w.substitutions,
        "deletions": w.deletions,
        "insertions": w.insertions,
        "ref_chars": ref_chars,
        "char_errors": c.substitutions + c.deletions + c.insertions,
        "utterances": len(refs),
        "sentence_errors": sum(r.split() != h.split() for r, h in zip(refs, hyps)),
    }


def _top(counter: dict, n: int) -> list[tuple]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _count_errors(output) -> tuple[Counter, Counter, Counter]:
    """(substitutions {(ref, hyp): n}, deletions {ref: n}, insertions {hyp: n}) of a jiwer
    output, one unit (word or character) at a time."""
    subs, dels, ins = Counter(), Counter(), Counter()
    for ref, hyp, chunks in zip(output.references, output.hypotheses, output.alignments):
        for c in chunks:
            r = ref[c.ref_start_idx : c.ref_end_idx]
            h = hyp[c.hyp_start_idx : c.hyp_end_idx]
            if c.type == "substitute":
                subs.update(zip(r, h))
            elif c.type == "delete":
                dels.update(r)
            elif c.type == "insert":
                ins.update(h)
    return subs, dels, ins


def error_analysis(refs: Sequence[str], hyps: Sequence[str], top: int = TOP_ERRORS) -> dict:
    """The most frequent errors, word level and character level.

    Returns ``{"substitutions": [{"ref", "hyp", "count"}], "deletions": [{"word", "count"}],
    "insertions": [{"word", "count"}], "char_substitutions": [...], "char_deletions": [...],
    "char_insertions": [...]}``, each sorted by count, most frequent first (ties
    alphabetically). Character entries use the same keys; the space is a character too.
    """
    jiwer = _jiwer()
    out = {}
    for prefix, output in (
        ("", jiwer.process_words(list(refs), list(hyps))),
        ("char_", jiwer.process_characters(list(refs), list(hyps))),
    ):
        subs, dels, ins = _count_errors(output)
        out[prefix + "substitutions"] = [
            {"ref": r, "hyp": h, "count": n} for (r, h), n in _top(subs, top)
        ]
        out[prefix + "deletions"] = [{"word": w, "count": n} for w, n in _top(dels, top)]
        out[prefix + "insertions"] = [{"word": w, "count": n} for w, n in _top(ins, top)]
    return out


def align_words(ref: str, hyp: str) -> tuple[int, str]:
    """Word errors of one utterance and a one-line view of them.

    ``align_words("the cat sat", "the bat sat down")`` -> ``(2, "the [cat->bat] sat [+down]")``:
    ``[a->b]`` a substitution, ``[-a]`` a deletion, ``[+b]`` an insertion.
    """
    jiwer = _jiwer()
    out = jiwer.process_words([ref], [hyp])
    r, h = out.references[0], out.hypotheses[0]
    parts = []
    for chunk in out.alignments[0]:
        rw = r[chunk.ref_start_idx : chunk.ref_end_idx]
        hw = h[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "equal":
            parts.extend(rw)
        elif chunk.type == "substitute":
            parts.extend(f"[{a}->{b}]" for a, b in zip(rw, hw))
        elif chunk.type == "delete":
            parts.extend(f"[-{a}]" for a in rw)
        else:
            parts.extend(f"[+{b}]" for b in hw)
    return out.substitutions + out.deletions + out.insertions, " ".join(parts)


def worst_utterances(
    ids: Sequence[str], refs: Sequence[str], hyps: Sequence[str], n: int = WORST
) -> list[dict]:
    """The ``n`` utterances with the most word errors (ties: higher WER first)."""
    rows = []
    for uid, ref, hyp in zip(ids, refs, hyps):
        errors, diff = align_words(ref, hyp)
        if errors == 0:
            continue
        words = len(ref.split())
        rows.append(
            {
                "id": uid,
                "errors": errors,
                "wer": errors / max(words, 1),
                "ref": ref,
                "hyp": hyp,
                "diff": diff,
            }
        )
    rows.sort(key=lambda r: (-r["errors"], -r["wer"], r["id"]))
    return rows[:n]


# ------------------------------------------------------------------------------------------
# Inference


WER_PNG = "wer.png"  # WER per set and decoding mode
VOICES_PNG = "voices.png"  # CER per voice (or engine) of the sets broken down so
FIGURES = (WER_PNG, VOICES_PNG)  # what write_results may draw beside results.json


def error_rates_by(
    groups: Sequence[str], refs: Sequence[str], hyps: Sequence[str]
) -> dict[str, dict]:
    """``{group: {"utterances", "wer", "cer"}}``: the error rates of each group's utterances,
    summed over the group like :func:`error_rates` (so a voice with long sentences weighs more)."""
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = {}
    for g in sorted(members):
        idx = members[g]
        e = error_rates([refs[i] for i in idx], [hyps[i] for i in idx])
        out[g] = {"utterances": len(idx), "wer": e["wer"], "cer": e["cer"]}
    return out


def load(model, device="auto") -> LoadedModel:
    """A LoadedModel from a LoadedModel, a folder, a Hub repo id or a shipped name."""
    if isinstance(model, LoadedModel):
        return model
    from ds2.hub import load_model

    return load_model(None if model is None else str(model), device=device)


class _Features(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict], feature_cfg, transform=None):
        self.rows = rows
        self.cfg = feature_cfg
        self.transform = transform

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        path = self.rows[i]["audio"]
        try:
            audio = load_audio(path, allow_silence=True)
        except AudioError as e:
            raise AudioError(f"evaluation utterance {i} ({path}): {e}") from None
        if self.transform is not None:
            audio = self.transform(audio)
        return i, compute_features(audio, self.cfg)


def _collate(items):
    idx = [i for i, _ in items]
    feats, lengths = pad_features([f for _, f in items])
    return idx, feats, lengths


def _batches(durations: Sequence[float], batch_seconds: float) -> list[list[int]]:
    """Indices grouped longest first so that padding stays small; each batch's padded
    duration (longest x count) stays under ``batch_seconds`` (a lone long clip goes alone)."""
    order = sorted(range(len(durations)), key=lambda i: -durations[i])
    batches, cur = [], []
    for i in order:
        longest = durations[cur[0]] if cur else durations[i]
        if cur and longest * (len(cur) + 1) > batch_seconds:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


@torch.inference_mode()
def infer_log_probs(
    model: LoadedModel,
    rows: list[dict],
    *,
    batch_seconds: float = BATCH_SECONDS,
    num_workers: int = 0,
    desc: str = "inference",
    transform: Callable | None = None,
) -> list[torch.Tensor]:
    """Run the network on every utterance of ``rows`` (manifest rows) in batches.

    ``transform``, if given, maps each clip's 16-kHz float32 samples to the samples the network
    hears (a probe's warping, say); batches are planned on the rows' own durations.

    Returns one float32 CPU tensor per row, in row order, each of shape
    ``(n_out_frames_i, vocab_size)`` (padding cut off).
    """
    durations = [float(r.get("duration") or 0.0) for r in rows]
    loader = torch.utils.data.DataLoader(
        _Features(rows, model.feature_config, transform),
        batch_sampler=_batches(durations, batch_seconds),
        collate_fn=_collate,
        num_workers=num_workers,
    )
    device = model.device
    net = model.model
    was_training = net.training  # a trainer may hand over its model mid-run
    net.eval()
    out: list[torch.Tensor | None] = [None] * len(rows)
    try:
        with tqdm(total=len(rows), desc=desc, unit="utt", mininterval=1.0) as bar:
            for idx, feats, lengths in loader:
                log_probs, out_lengths = net(feats.to(device), lengths.to(device))  # (B, T', V)
                log_probs = log_probs.float().cpu()
                for b, i in enumerate(idx):
                    out[i] = log_probs[b, : int(out_lengths[b])].clone()
                bar.update(len(idx))
    finally:
        net.train(was_training)
    return out


def _log_probs_key(
    model: LoadedModel, rows: list[dict], clip_hashes: Sequence[str] | None = None
) -> str:
    """A fingerprint of what the network's output depends on: its weights, its feature
    settings and the utterances (audio path, duration and the file's bytes: ``clip_hashes``,
    the rows' :func:`~train.manifest.audio_hashes` if already read), in order."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps(model.config.get("features"), sort_keys=True).encode())
    h.update(json.dumps([[str(r.get("audio")), r.get("duration")] for r in rows]).encode())
    if clip_hashes is None:
        clip_hashes = audio_hashes(rows)
    h.update(json.dumps(list(clip_hashes)).encode())  # a re-synthesized clip is another input
    return h.hexdigest()


def cached_log_probs(
    model: LoadedModel, rows: list[dict], cache: str | os.PathLike, **kwargs
) -> list[torch.Tensor]:
    """:func:`infer_log_probs`, kept in the safetensors file ``cache`` so that a second run on
    the same model and utterances (another LM to tune, say) skips the network.

    The file records a fingerprint of the weights, the feature settings and the rows; a cache
    written for anything else is recomputed and replaced, never used.
    """
    return _log_probs_via_cache(model, rows, cache, **kwargs)[0]


def _log_probs_via_cache(
    model: LoadedModel,
    rows: list[dict],
    cache: str | os.PathLike,
    clip_hashes: Sequence[str] | None = None,
    **kwargs,
) -> tuple[list[torch.Tensor], bool]:
    """:func:`cached_log_probs`, and whether they came from the file (the network did not run);
    ``clip_hashes`` as for :func:`_log_probs_key`."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    cache = Path(cache)
    key = _log_probs_key(model, rows, clip_hashes)
    if cache.is_file():
        with safe_open(str(cache), "pt") as f:
            same = (f.metadata() or {}).get("key") == key
        if same:
            tensors = load_file(str(cache))
            return [tensors[str(i)] for i in range(len(rows))], True
        print(f"{cache} was written for another model or set: recomputing it")
    out = infer_log_probs(model, rows, **kwargs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.tmp")
    save_file({str(i): lp.contiguous() for i, lp in enumerate(out)}, str(tmp), {"key": key})
    tmp.replace(cache)
    return out, False


# ------------------------------------------------------------------------------------------
# Decoding


def resolve_lm(model: LoadedModel, lm=None, lexicon=None) -> tuple[Path | None, Path | None]:
    """The (LM, lexicon) paths to use: explicit ones, else the model's own.

    ``lm`` may be a file or a folder holding ``lm.bin`` or ``lm.arpa`` (and ``lexicon.txt``).
    An LM without a lexicon gets the ``lexicon.txt`` beside it when there is one.
    """
    if lm is None:
        return model.lm_path, Path(lexicon) if lexicon else model.lexicon_path
    lm = Path(lm)
    if lm.is_dir():
        found = [lm / n for n in ("lm.bin", "lm.arpa") if (lm / n).is_file()]
        if not found:
            raise DecoderError(f"the LM folder {lm} holds no lm.bin or lm.arpa")
        lm = found[0]
    if not lm.is_file():
        raise DecoderError(f"LM file not found: {lm}")
    if lexicon is None and (lm.parent / "lexicon.txt").is_file():
        lexicon = lm.parent / "lexicon.txt"
    return lm, Path(lexicon) if lexicon else None


def make_decoder(
    model: LoadedModel,
    mode: str,
    *,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    lm: Path | None = None,
    lexicon: Path | None = None,
    lm_weight: float | None = None,
    word_score: float | None = None,
) -> Callable[[list[torch.Tensor]], list[str]]:
    """A function that decodes a list of ``(n_frames_i, vocab)`` log-prob tensors to texts."""
    from ds2.decoding import BeamSearchDecoder, greedy_decode

    vocab = model.vocab
    if mode == "greedy":
        return lambda lps: [greedy_decode(lp, vocab).text for lp in lps]
    if mode == "beam":
        dec = BeamSearchDecoder(vocab, beam_width=beam_width, nbest=1, device=model.device)
    elif mode == "beam_lm":
        if lm is None:
            raise DecoderError("mode beam_lm needs an LM: the model ships none; pass --lm")
        defaults = model.decoder_defaults
        dec = BeamSearchDecoder(
            vocab,
            beam_width=beam_width,
            nbest=1,
            lexicon=lexicon,
            lm=lm,
            lm_weight=lm_weight if lm_weight is not None else defaults.get("lm_weight", 0.8),
            word_score=word_score if word_score is not None else defaults.get("word_score", 0.0),
        )
    else:
        raise DecoderError(f"unknown decoding mode {mode!r}; choose from {', '.join(MODES)}")
    return lambda lps: [dec(lp)[0].text for lp in lps]


def decode_all(decode, log_probs: list[torch.Tensor], desc: str, chunk: int = 16) -> list[str]:
    """``decode`` over every utterance, in chunks, with a progress bar."""
    texts: list[str] = []
    with tqdm(total=len(log_probs), desc=desc, unit="utt", mininterval=1.0) as bar:
        for s in range(0, len(log_probs), chunk):
            texts.extend(decode(log_probs[s : s + chunk]))
            bar.update(min(chunk, len(log_probs) - s))
    return texts


# ------------------------------------------------------------------------------------------
# The evaluation


def _read_sets(manifests) -> dict[str, list[dict]]:
    """``{name: rows}`` from paths, ``name=path`` strings, or a ``{name: path | rows}`` dict."""
    from train.manifest import read_manifest

    if isinstance(manifests, (str, os.PathLike)):
        manifests = [manifests]
    if not isinstance(manifests, dict):
        named = {}
        for m in manifests:
            m = str(m)
            name, sep, path = m.partition("=")
            if not sep or not name or os.sep in name:
                name, path = Path(m).stem, m
            if name in named:
                name = f"{Path(path).parent.name}/{name}"
            named[name] = path
        manifests = named
    sets = {}
    for name, m in manifests.items():
        rows = list(m) if isinstance(m, (list, tuple)) else read_manifest(m)
        if not rows:
            raise DS2Error(f"evaluation set '{name}' has no utterances")
        sets[name] = rows
    if not sets:
        raise DS2Error("no evaluation manifests given")
    return sets


def _parse_modes(modes) -> list[str]:
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise DS2Error(f"unknown decoding mode(s) {bad}; choose from {', '.join(MODES)}")
    return modes


def evaluate(
    model,
    manifests,
    modes: Iterable[str] | str = MODES,
    *,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    lm=None,
    lexicon=None,
    lm_weight: float | None = None,
    word_score: float | None = None,
    device="auto",
    batch_seconds: float = BATCH_SECONDS,
    num_workers: int = 0,
    limit: int | None = None,
    top: int = TOP_ERRORS,
    worst: int = WORST,
    out: str | os.PathLike | None = None,
    log_probs_dir: str | os.PathLike | None = None,
) -> dict:
    """Evaluate ``model`` on each manifest with each decoding mode.

    model : LoadedModel, or a spec for :func:`ds2.load_model` (folder, Hub id, shipped name)
    manifests : list of manifest paths (``name=path`` to name a set), or ``{name: path | rows}``
    modes : subset of ``("greedy", "beam", "beam_lm")``; ``beam_lm`` is dropped, with a note in
        the results, when neither the model nor ``lm`` provides an LM
    lm, lexicon : LM file or folder and lexicon overriding the model's own
    lm_weight, word_score : override the model's tuned values for ``beam_lm``
    limit : evaluate only the first ``limit`` utterances of each set (quick looks)
    out : folder for results.json, results.md, wer.png, voices.png and hyps/ (nothing written
        if None)
    log_probs_dir : keep each set's network output in ``DIR/SET.safetensors``
        (:func:`cached_log_probs`); evaluating the same model on the same sets again, with
        another LM or other decoder settings, then only decodes

    Returns the results dict that results.json holds::

        {"model": {...}, "decoding": {...}, "sets": {name: {"utterances", "hours",
         "modes": {mode: {"wer", "cer", ..., "errors": {...}, "worst": [...]}}}}, ...}
    """
    t_start = time.time()
    modes = _parse_modes(modes)
    sets = _read_sets(manifests)  # bad options and manifests fail before the model loads
    loaded = load(model, device)
    lm_path, lexicon_path = resolve_lm(loaded, lm, lexicon)
    notes = []
    if "beam_lm" in modes and lm_path is None:
        modes.remove("beam_lm")
        notes.append("beam_lm skipped: the model ships no LM and none was given")
        if not modes:
            raise DecoderError("beam_lm was the only mode asked for, and there is no LM")
    defaults = loaded.decoder_defaults
    decoding = {"beam_width": beam_width}
    if "beam_lm" in modes:
        decoding.update(
            {
                "lm": str(lm_path),
                "lexicon": str(lexicon_path) if lexicon_path else None,
                "lm_weight": lm_weight if lm_weight is not None else defaults.get("lm_weight", 0.8),
                "word_score": word_score
                if word_score is not None
                else defaults.get("word_score", 0.0),
            }
        )
    decoders = {
        m: make_decoder(
            loaded,
            m,
            beam_width=beam_width,
            lm=lm_path,
            lexicon=lexicon_path,
            lm_weight=decoding.get("lm_weight"),
            word_score=decoding.get("word_score"),
        )
        for m in modes
    }

    for note in notes:
        print(note)
    out_dir = Path(out) if out is not None else None
    results = {
        "model": {
            "name": loaded.name,
            "folder": str(loaded.folder) if loaded.folder else None,
            "architecture": loaded.config.get("model", {}).get("name"),
            "parameters": loaded.model.num_parameters(),
            "device": str(loaded.device),
        },
        "decoding": decoding,
        "modes": modes,
        "notes": notes,
        "sets": {},
    }
    for name, rows in sets.items():
        if limit:
            rows = rows[:limit]
        refs = [normalize_text(r["text"]) for r in rows]
        ids = [r.get("id") or Path(r["audio"]).stem for r in rows]
        key = group_key(rows)
        groups = [str(r[key]) for r in rows] if key else None
        audio_s = sum(float(r.get("duration") or 0.0) for r in rows)
        # read once: which clips the scores belong to (a rebuilt set reads differently), and
        # the log-probs cache's key
        clip_hashes = audio_hashes(rows)
        t0 = time.time()
        infer = dict(batch_seconds=batch_seconds, num_workers=num_workers)
        infer["desc"] = f"{name}: inference"
        if log_probs_dir is None:
            log_probs, cached = infer_log_probs(loaded, rows, **infer), False
        else:
            cache = Path(log_probs_dir) / f"{_safe(name)}.safetensors"
            log_probs, cached = _log_probs_via_cache(loaded, rows, cache, clip_hashes, **infer)
        infer_s = time.time() - t0
        set_res = {"utterances": len(rows), "hours": round(audio_s / 3600, 4)}
        set_res.update(audio_fingerprint(rows, clip_hashes))
        if cached:  # the network did not run: there is no inference time to report
            set_res["inference_cached"] = True
        else:
            set_res["inference_seconds"] = round(infer_s, 2)
            set_res["inference_rtf"] = round(infer_s / audio_s, 5) if audio_s else None
        set_res["modes"] = {}
        if key:
            set_res["group_by"] = key
        for mode in modes:
            t0 = time.time()
            hyps = decode_all(decoders[mode], log_probs, desc=f"{name}: {mode}")
            decode_s = time.time() - t0
            scores = error_rates(refs, hyps)
            set_res["modes"][mode] = {
                **scores,
                "decode_seconds": round(decode_s, 2),
                "errors": error_analysis(refs, hyps, top),
                "worst": worst_utterances(ids, refs, hyps, worst),
            }
            if groups:
                set_res["modes"][mode]["by_group"] = error_rates_by(groups, refs, hyps)
            print(f"{name:>16} {mode:>8}: WER {scores['wer']:.2%}  CER {scores['cer']:.2%}")
            if out_dir is not None:
                _write_hyps(out_dir / "hyps" / f"{_safe(name)}.{mode}.jsonl", ids, refs, hyps)
        results["sets"][name] = set_res
    results["seconds"] = round(time.time() - t_start, 1)
    if out_dir is not None:
        write_results(results, out_dir)
    return results


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write_hyps(path: Path, ids, refs, hyps) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for uid, ref, hyp in zip(ids, refs, hyps):
            f.write(json.dumps({"id": uid, "ref": ref, "hyp": hyp}) + "\n")


# ------------------------------------------------------------------------------------------
# Reports


def _pct(x: float) -> str:
    return f"{100 * x:.2f}" if x is not None and math.isfinite(x) else "-"


def results_table(results: dict) -> str:
    """The Markdown table of WER/CER per set and decoding mode (also used by model cards)."""
    lines = [
        "| set | hours | utterances | decoding | WER % | CER % | sub | del | ins |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in results["sets"].items():
        for mode, r in s["modes"].items():
            lines.append(
                f"| {name} | {s['hours']:.2f} | {s['utterances']} | {mode} | {_pct(r['wer'])} | "
                f"{_pct(r['cer'])} | {r['substitutions']} | {r['deletions']} | {r['insertions']} |"
            )
    return "\n".join(lines)


def _grouped_sets(results: dict):
    """``(set name, group key, modes with a breakdown)`` for each set broken down by voice."""
    for name, s in results["sets"].items():
        modes = [m for m, r in s["modes"].items() if "by_group" in r]
        if s.get("group_by") and modes:
            yield name, s["group_by"], modes


def results_by_group(results: dict) -> str:
    """Markdown tables of CER / WER (%) per voice (or engine) of every set broken down so,
    one column per decoding mode, worst group first; empty when no set is."""
    out = []
    for name, key, modes in _grouped_sets(results):
        s = results["sets"][name]
        first = s["modes"][modes[0]]["by_group"]
        out += [
            f"**{name}** by {key} (CER / WER %, worst first):",
            "",
            f"| {key} | utterances | " + " | ".join(modes) + " |",
            "|---|---:|" + "---:|" * len(modes),
        ]
        for g in sorted(first, key=lambda g: -first[g]["cer"]):
            cells = [
                f"{_pct(s['modes'][m]['by_group'][g]['cer'])} / "
                f"{_pct(s['modes'][m]['by_group'][g]['wer'])}"
                for m in modes
            ]
            out.append(
                f"| {_md_escape(g)} | {first[g]['utterances']} | " + " | ".join(cells) + " |"
            )
        out.append("")
    return "\n".join(out).rstrip("\n")


def _show_char(c: str) -> str:
    return "\u2423" if c == " " else c  # the open-box symbol for a space


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|") or "(empty)"


def results_markdown(results: dict) -> str:
    """The full report: summary table, then per set the error analysis of its best mode."""
    m = results["model"]
    d = results["decoding"]
    out = [
        f"# Evaluation of {m['name']}",
        "",
        f"Model `{m['folder'] or m['name']}` ({m['architecture']}, "
        f"{m['parameters'] / 1e6:.1f} M parameters), beam width {d['beam_width']}"
        + (
            f", LM `{Path(d['lm']).name}` with lm_weight {d['lm_weight']}, word_score "
            f"{d['word_score']}"
            if "lm" in d
            else ""
        )
        + ".",
        "",
        results_table(results),
        "",
    ]
    out.extend(f"*{n}*" for n in results.get("notes", []))
    by_group = results_by_group(results)
    if by_group:
        out += ["", "## By voice", "", by_group]
    for name, s in results["sets"].items():
        mode, r = min(s["modes"].items(), key=lambda kv: kv[1]["wer"])
        e = r["errors"]
        out += [
            "",
            f"## {name}: errors of `{mode}` decoding",
            "",
            "| substitution (ref -> hyp) | count | deletion | count | insertion | count |",
            "|---|---:|---|---:|---|---:|",
        ]
        n = max(len(e["substitutions"]), len(e["deletions"]), len(e["insertions"]))
        for i in range(n):
            cells = []
            if i < len(e["substitutions"]):
                x = e["substitutions"][i]
                cells += [f"{_md_escape(x['ref'])} -> {_md_escape(x['hyp'])}", str(x["count"])]
            else:
                cells += ["", ""]
            for key in ("deletions", "insertions"):
                if i < len(e[key]):
                    cells += [_md_escape(e[key][i]["word"]), str(e[key][i]["count"])]
                else:
                    cells += ["", ""]
            out.append("| " + " | ".join(cells) + " |")
        chars = ", ".join(
            f"`{_show_char(x['ref'])}`->`{_show_char(x['hyp'])}` ({x['count']})"
            for x in e["char_substitutions"][:10]
        )
        if chars:
            out += ["", f"Most common character substitutions: {chars}."]
        if r["worst"]:
            out += [
                "",
                "Worst utterances (`[a->b]` substituted, `[-a]` deleted, `[+b]` inserted):",
                "",
                "| id | errors | WER % | alignment |",
                "|---|---:|---:|---|",
            ]
            for w in r["worst"]:
                out.append(
                    f"| {_md_escape(str(w['id']))} | {w['errors']} | {_pct(w['wer'])} | "
                    f"{_md_escape(w['diff'])} |"
                )
    return "\n".join(out) + "\n"


def plot_results(results: dict, path: str | os.PathLike) -> Path:
    """Grouped bar chart of WER (%) per set and decoding mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(results["sets"])
    modes = results["modes"]
    width = 0.8 / max(len(modes), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(sets) + 2), 3.2))
    for k, mode in enumerate(modes):
        xs = [i + (k - (len(modes) - 1) / 2) * width for i in range(len(sets))]
        ys = [100 * results["sets"][s]["modes"][mode]["wer"] for s in sets]
        bars = ax.bar(xs, ys, width, label=mode)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(sets)), sets)
    ax.set_ylabel("WER (%)")
    ax.set_title(f"{results['model']['name']}: word error rate")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path, dpi=120)


def _save(fig, path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_by_group(results: dict, path: str | os.PathLike) -> Path | None:
    """Horizontal bars of greedy (else the first mode's) CER per voice or engine, one panel per
    set that is broken down, worst at the top; None when no set is."""
    panels = []
    for name, key, modes in _grouped_sets(results):
        mode = "greedy" if "greedy" in modes else modes[0]
        groups = results["sets"][name]["modes"][mode]["by_group"]
        order = sorted(groups, key=lambda g: groups[g]["cer"])
        panels.append((f"{name} ({mode})", key, order, groups))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [max(1.6, 0.22 * len(p[2]) + 0.8) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, sum(heights)), squeeze=False)
    for ax, (title, key, order, groups) in zip(axes[:, 0], panels):
        cers = [100 * groups[g]["cer"] for g in order]
        bars = ax.barh(range(len(order)), cers, color="tab:blue")
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        ax.set_yticks(range(len(order)), order, fontsize=7)
        ax.set_xlabel("CER (%)")
        ax.set_title(f"{title}: CER by {key}", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path, dpi=110)


def write_results(results: dict, out: str | os.PathLike) -> Path:
    """Write results.json, results.md, wer.png and (for sets broken down by voice) voices.png
    to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(results_markdown(results))
    plot_results(results, out / WER_PNG)
    plot_by_group(results, out / VOICES_PNG)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Word and character error rates of a ds2 model on test manifests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", default=None, help="folder, Hub repo id or shipped model name")
    ap.add_argument(
        "--manifest", nargs="+", required=True, help="JSONL manifests; name=path names a set"
    )
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated decoding modes")
    ap.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH)
    ap.add_argument("--lm", default=None, help="LM file or folder (default: the model's own)")
    ap.add_argument("--lexicon", default=None, help="lexicon (default: beside the LM)")
    ap.add_argument("--lm-weight", type=float, default=None, help="default: the model's tuned")
    ap.add_argument("--word-score", type=float, default=None, help="default: the model's tuned")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-seconds", type=float, default=BATCH_SECONDS)
    ap.add_argument("--num-workers", type=int, default=0, help="audio loading processes")
    ap.add_argument("--limit", type=int, default=None, help="first N utterances of each set")
    ap.add_argument("--out", required=True, help="folder for results.json / results.md")
    ap.add_argument(
        "--log-probs",
        default=None,
        metavar="DIR",
        help="keep each set's network output in DIR and reuse it when the model and the set "
        "are the same (evaluating another LM or beam width runs the network once)",
    )
    args = ap.parse_args(argv)

    results = evaluate(
        args.model,
        args.manifest,
        args.modes,
        beam_width=args.beam_width,
        lm=args.lm,
        lexicon=args.lexicon,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        device=args.device,
        batch_seconds=args.batch_seconds,
        num_workers=args.num_workers,
        limit=args.limit,
        out=args.out,
        log_probs_dir=args.log_probs,
    )
    print()
    print(results_table(results))
    print(f"\nwrote {args.out}/results.json and results.md")


if __name__ == "__main__":
    main()
