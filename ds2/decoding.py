"""Search over the model's per-frame character log-probabilities: greedy and beam search.

Decoding runs outside the model on ``log_probs`` of shape ``(n_frames, vocab_size)`` (one
utterance) or ``(batch, n_frames, vocab_size)``. Every decoder returns :class:`Hypothesis`
objects that carry the emitted tokens, the output frame of each token, and word timings.

Word timings (:func:`word_timings`)
    A word spans from the first frame of its first character to the last frame of its last
    character's run, plus one frame. A character's *run* is the stretch of frames its
    hypothesis' own frame-level path spends on it: the argmax path for greedy output,
    flashlight's best path for each beam hypothesis, a Viterbi alignment (``forced_align``)
    for the CUDA decoder, which returns no path. Without a path (a direct call to
    :func:`word_timings`), the run goes on while the character stays the frame's argmax.

Word confidence
    The geometric mean, over the word's characters, of each character's posterior
    probability, taken at the best frame of its run. A geometric mean punishes one doubtful
    character more than an arithmetic mean does, which is what a reader of a transcript
    wants: "cat" read with p = (0.99, 0.2, 0.99) gets 0.58, not 0.73. Confidence lies in 0..1.

Beam search uses flashlight-text through ``torchaudio.models.decoder.ctc_decoder`` (CPU), with an
optional KenLM word LM and a lexicon; on CUDA without an LM or lexicon it uses
``cuda_ctc_decoder``. Our blank ``"<blank>"`` is flashlight's blank token and our space is its
silence token ``"|"``, which ends every lexicon spelling; ids are the same on both sides.

Lexicon search: whole words only
    A word is complete when the search reads the ``"|"`` that ends its spelling; a frame where
    ``"|"`` is certain is appended so the last word can complete (and costs nothing in the
    scores). When no hypothesis of the final beam sits on a word boundary, flashlight returns
    paths that end inside a word ("hello wor"). Those characters spell no lexicon word, so
    they are read as blanks: the text keeps the completed words ("hello"), and the score is
    re-computed for that path (its acoustic score, plus word and LM scores of the completed
    words only), the same score a wider beam gives the same path. Results that become equal
    are merged, keeping the best score, so every hypothesis of a lexicon search is lexicon
    words only and scores stay comparable across beam widths.

Scores sum over alignments
    Hypotheses that reach the same state are merged by adding their probabilities
    (``log_add=True``, CTC prefix beam search), so a transcript outscores a likelier single
    path when enough of its alignments agree. The sums hold only the alignments the beam kept:
    on exactly tied posteriors they vary by ~1e-3 between calls, and the re-computed score of
    a cut partial word matches a wider beam's exactly only with ``log_add=False`` (one
    alignment per hypothesis, flashlight's default, which without an LM returns the greedy
    transcript).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DecoderError
from .vocab import BLANK, SPACE, Vocabulary

FRAME_SECONDS = 0.02  # seconds per output frame: 10-ms feature hop x time stride 2
SIL_TOKEN = "|"  # flashlight's silence / word-boundary token; our space maps onto it
UNK_WORD = "<unk>"
# Hypotheses kept per frame unless asked otherwise: on ds2-large-synth the LM beam search at
# 128 has ~1 point less WER than at 32, and 256 or 512 gain nothing more (session 19).
DEFAULT_BEAM_WIDTH = 128
_CACHE_SIZE = 4  # flashlight decoders kept alive; one with a large LM can take seconds to build
_NOT_SPACE_LOGP = -1e4  # log-prob of every symbol but "|" in the frame appended for a lexicon


@dataclass(frozen=True)
class Word:
    """One decoded word with its time span (seconds) and a confidence in 0..1."""

    word: str
    start: float  # seconds, start of the word's first character frame
    end: float  # seconds, end of the word's last character frame
    confidence: float  # geometric mean of the characters' posteriors (see module docstring)


@dataclass
class Hypothesis:
    """One transcript candidate.

    ``tokens`` are vocabulary ids after CTC collapse, without leading, trailing or repeated
    spaces, so ``vocab.decode(tokens) == text``; ``timesteps[i]`` is the output frame at which
    ``tokens[i]`` was emitted. ``score`` is the decoder's log-score (for greedy: the sum of the
    per-frame maximum log-probabilities; for beam: the acoustic score, summed over the
    alignments the beam kept, plus flashlight's weighted LM, word and silence scores).
    """

    text: str
    score: float
    tokens: list[int] = field(default_factory=list)
    timesteps: list[int] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


def ctc_collapse(ids, blank: int = 0) -> list[int]:
    """CTC collapse of a frame-level id path: merge repeats, then drop blanks.

    ``[a, a, blank, a, b, b]`` -> ``[a, a, b]``: a blank between two equal characters keeps both.
    """
    out = []
    prev = None
    for i in _as_id_list(ids):
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def greedy_decode(log_probs, vocab: Vocabulary, frame_seconds: float = FRAME_SECONDS) -> Hypothesis:
    """Best path decoding: the most likely symbol in each frame, then CTC collapse.

    log_probs : torch.Tensor or np.ndarray, shape = (n_frames, vocab_size)
        Per-frame log-probabilities of one utterance (already cut to its length).

    The hypothesis' ``timesteps`` hold the first frame of each emitted token's run.
    """
    lp = _check_log_probs(log_probs, vocab)
    if lp.shape[0] == 0:
        return Hypothesis(text="", score=0.0)
    best, ids = lp.max(dim=-1)  # (n_frames,), (n_frames,)
    path = ids.tolist()
    tokens, timesteps = [], []
    prev = None
    for t, i in enumerate(path):
        if i != prev and i != vocab.blank_id:
            tokens.append(i)
            timesteps.append(t)
        prev = i
    tokens, timesteps = _tidy_spaces(tokens, timesteps, vocab.space_id)
    return Hypothesis(
        text=vocab.decode(tokens),
        score=float(best.double().sum()),
        tokens=tokens,
        timesteps=timesteps,
        words=word_timings(tokens, timesteps, lp, vocab, frame_seconds, path=ids),
    )


def word_timings(
    tokens,
    timesteps,
    log_probs,
    vocab: Vocabulary,
    frame_seconds: float = FRAME_SECONDS,
    *,
    path: torch.Tensor | None = None,
) -> list[Word]:
    """Start, end (seconds) and confidence of each word of a decoded token sequence.

    tokens : list[int]
        Collapsed token ids; words are separated by the space token.
    timesteps : list[int]
        Output frame at which each token was emitted, same length as ``tokens``.
    log_probs : torch.Tensor or np.ndarray, shape = (n_frames, vocab_size)
    path : torch.Tensor, shape = (n_frames,), optional
        The hypothesis' frame-level symbol path (its runs bound the characters); the
        per-frame argmax of ``log_probs`` when omitted.

    See the module docstring for how runs, times and confidences are defined.
    """
    tokens = _as_id_list(tokens)
    timesteps = _as_id_list(timesteps)
    if len(tokens) != len(timesteps):
        raise DecoderError(
            f"tokens and timesteps differ in length ({len(tokens)} vs {len(timesteps)})"
        )
    if not tokens:
        return []
    lp = _check_log_probs(log_probs, vocab)
    n_frames = lp.shape[0]
    if path is None:
        path = lp.argmax(dim=-1)
    path = path.tolist()

    words: list[Word] = []
    chars: list[str] = []
    start_frame = end_frame = 0
    log_conf = 0.0
    for k, (tok, t) in enumerate(zip(tokens, timesteps)):
        if tok == vocab.space_id or tok == vocab.blank_id:
            if chars:
                words.append(_word(chars, start_frame, end_frame, log_conf, frame_seconds))
                chars = []
            continue
        t = min(max(t, 0), n_frames - 1)
        # the run may not reach into the next token's frame
        limit = min(timesteps[k + 1], n_frames) if k + 1 < len(tokens) else n_frames
        last = t
        while last + 1 < limit and path[last + 1] == tok:
            last += 1
        if not chars:
            start_frame = t
            log_conf = 0.0
        chars.append(vocab.tokens[tok])
        end_frame = last
        log_conf += float(lp[t : last + 1, tok].max())
    if chars:
        words.append(_word(chars, start_frame, end_frame, log_conf, frame_seconds))
    return words


def _word(chars, start_frame, end_frame, log_conf, frame_seconds) -> Word:
    confidence = math.exp(log_conf / len(chars))
    return Word(
        word="".join(chars),
        start=round(start_frame * frame_seconds, 4),
        end=round((end_frame + 1) * frame_seconds, 4),
        confidence=min(max(confidence, 0.0), 1.0),
    )


def _tidy_spaces(tokens, timesteps, space_id):
    """Drop leading, trailing and repeated spaces so that tokens read as clean text."""
    out_tok, out_t = [], []
    for tok, t in zip(tokens, timesteps):
        if tok == space_id and (not out_tok or out_tok[-1] == space_id):
            continue
        out_tok.append(tok)
        out_t.append(t)
    if out_tok and out_tok[-1] == space_id:
        out_tok.pop()
        out_t.pop()
    return out_tok, out_t


def _as_id_list(ids) -> list[int]:
    if isinstance(ids, torch.Tensor):
        return ids.tolist()
    if isinstance(ids, np.ndarray):
        return ids.tolist()
    return [int(i) for i in ids]


def _check_log_probs(log_probs, vocab: Vocabulary) -> torch.Tensor:
    """``log_probs`` as a float32 CPU tensor of shape (n_frames, vocab_size), or DecoderError."""
    if isinstance(log_probs, np.ndarray):
        log_probs = torch.from_numpy(log_probs)
    if not isinstance(log_probs, torch.Tensor):
        raise DecoderError(f"log_probs must be a tensor or array, got {type(log_probs).__name__}")
    if log_probs.ndim != 2 or log_probs.shape[1] != len(vocab):
        raise DecoderError(
            f"log_probs must have shape (n_frames, {len(vocab)}), got {tuple(log_probs.shape)}"
        )
    return log_probs.detach().to(device="cpu", dtype=torch.float32)


def _path_to_tokens(path: list[int], blank: int) -> tuple[list[int], list[int]]:
    """Collapse a frame-level path; each token's timestep is the first frame of its run."""
    tokens, timesteps = [], []
    prev = None
    for t, i in enumerate(path):
        if i != prev and i != blank:
            tokens.append(i)
            timesteps.append(t)
        prev = i
    return tokens, timesteps


# ---------------------------------------------------------------------------------------------
# Beam search


def flashlight_tokens(vocab: Vocabulary) -> list[str]:
    """Our vocabulary as flashlight tokens: same ids, the space spelled as the silence token "|".

    The blank keeps its name ``"<blank>"`` and is passed to flashlight as ``blank_token``; the
    space becomes ``"|"`` (``sil_token``), the word boundary that ends every lexicon spelling.
    Keeping ids identical means decoder output ids are our vocabulary ids.
    """
    if SIL_TOKEN in vocab.tokens:
        raise DecoderError(f"the vocabulary may not contain {SIL_TOKEN!r}: flashlight reserves it")
    return [SIL_TOKEN if t == SPACE else t for t in vocab.tokens]


def write_lexicon(words, path, vocab: Vocabulary | None = None) -> int:
    """Write a flashlight lexicon (``word<TAB>c h a r s |`` per line) from a word list.

    Words are stripped; empty words, words with a space or with a character outside the
    vocabulary, and repeats are skipped. Returns the number of words written.
    """
    vocab = vocab or Vocabulary()
    allowed = set(vocab.tokens) - {BLANK, SPACE}
    seen = set()
    lines = []
    for w in words:
        w = str(w).strip()
        if not w or w in seen or not set(w) <= allowed:
            continue
        seen.add(w)
        lines.append(f"{w}\t{' '.join(w)} {SIL_TOKEN}\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def is_arpa(path) -> bool:
    """Whether ``path`` is a text ARPA file (KenLM binaries start with other bytes)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return head.lstrip().startswith(b"\\data\\")


def arpa_unigrams(path) -> list[str]:
    """Words of an ARPA file's ``\\1-grams:`` section (``<s>``, ``</s>``, ``<unk>`` included)."""
    words = []
    with open(path, encoding="utf-8", errors="replace") as f:
        in_unigrams = False
        for line in f:
            line = line.strip()
            if line.startswith("\\"):
                if in_unigrams:
                    break
                in_unigrams = line == "\\1-grams:"
                continue
            if in_unigrams and line:
                parts = line.split()
                if len(parts) >= 2:
                    words.append(parts[1])
    return words


def _check_file(path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DecoderError(f"{what} file not found: {path}")
    if path.stat().st_size == 0:
        raise DecoderError(f"{what} file is empty: {path}")
    return path


def _check_lexicon(path: Path, tokens: list[str]) -> None:
    """Fail early, with the line number, on a lexicon flashlight would misread."""
    known = set(tokens)
    n_words = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not parts[1].split():
                raise DecoderError(
                    f"{path}:{n}: expected 'word<TAB>c h a r s {SIL_TOKEN}', got {line.strip()!r}"
                )
            bad = [t for t in parts[1].split() if t not in known]
            if bad:
                raise DecoderError(
                    f"{path}:{n}: spelling of {parts[0]!r} uses tokens outside the vocabulary: "
                    f"{bad}; write lexicons with ds2.decoding.write_lexicon"
                )
            n_words += 1
    if n_words == 0:
        raise DecoderError(f"lexicon file has no words: {path}")


def _file_key(path: Path | None):
    if path is None:
        return None
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


class _Cached:
    """A built decoder shared by every BeamSearchDecoder with the same settings."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.lock = threading.Lock()  # flashlight and cuctc decoders keep per-call state


_cache: OrderedDict[tuple, _Cached] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(key: tuple, build) -> _Cached:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    entry = _Cached(build())
    with _cache_lock:
        _cache[key] = entry
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


_lm_cache: OrderedDict[tuple, object] = OrderedDict()
_LM_CACHE_SIZE = 2  # loaded KenLM models; the loading, not the search, is what takes seconds


@contextlib.contextmanager
def _native_stderr_captured():
    """Send what C++ code writes to file descriptor 2 to a buffer instead of the terminal.

    KenLM prints a progress bar and a "build a binary file" hint to stderr while it reads an
    ARPA file: noise for ``python -m ds2 transcribe`` users. On failure the captured text is
    added to the exception, so nothing useful is lost. Other threads' stderr is held back too
    for the moment the LM takes to load (once per model: it is cached).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield
        except Exception as e:
            os.dup2(saved, 2)
            buf.seek(0)
            said = buf.read().decode(errors="replace").strip()
            if said:
                e.add_note(f"KenLM said: {said[-2000:]}")
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _kenlm(lm: Path, lexicon: Path, given_lexicon: Path | None):
    """A KenLM model indexed by the lexicon's word dictionary, cached across decoder settings.

    ``ctc_decoder`` builds its word dictionary from the same lexicon file with the same
    function, so the indices agree; sharing the model means changing ``lm_weight`` or
    ``word_score`` costs a new search graph, not a new LM load.
    """
    from flashlight.lib.text.dictionary import create_word_dict, load_words

    try:
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:
        from flashlight.lib.text.decoder import KenLM

    # a lexicon derived from the ARPA file changes only when the ARPA file does
    key = (_file_key(lm), _file_key(given_lexicon))
    with _cache_lock:
        if key in _lm_cache:
            _lm_cache.move_to_end(key)
            return _lm_cache[key]
    with _native_stderr_captured():
        model = KenLM(str(lm), create_word_dict(load_words(str(lexicon))))
    with _cache_lock:
        _lm_cache[key] = model
        while len(_lm_cache) > _LM_CACHE_SIZE:
            _lm_cache.popitem(last=False)
    return model


def clear_decoder_cache() -> None:
    """Forget every cached decoder and LM."""
    with _cache_lock:
        _cache.clear()
        _lm_cache.clear()


def cuda_beam_search_works(device="cuda") -> bool:
    """Whether torchaudio's ``cuda_ctc_decoder`` can be trusted on this CUDA device.

    Its top-k kernel (torchaudio 2.11 and before) places an array four times too far into its shared
    memory (pytorch/audio#3754, #4181). On Hopper and newer GPUs (compute capability 9.0 and up:
    H100, H200, Blackwell) that faults at once with ``cudaErrorIllegalAddress``, measured here
    on an H100, and the fault leaves the whole CUDA context unusable, so the model with it.
    There the beam search runs on the CPU (flashlight), which is fast for a character CTC
    model. Older GPUs run the kernel with the overrun landing in unused shared memory.
    """
    return torch.cuda.get_device_capability(torch.device(device)) < (9, 0)


class BeamSearchDecoder:
    """CTC prefix beam search with an optional KenLM word LM and lexicon.

    Parameters
    ----------
    vocab : Vocabulary
    beam_width : int
        Hypotheses kept after each frame.
    nbest : int
        Distinct transcripts returned per utterance, best first (fewer when the beam holds fewer).
    lexicon : path, optional
        Flashlight lexicon (``word<TAB>c h a r s |``, see :func:`write_lexicon`). With a lexicon
        the search only spells lexicon words.
    lm : path, optional
        KenLM word LM, ARPA text or KenLM binary. A word LM needs a lexicon to map spellings to
        words: without ``lexicon``, the lexicon is built from an ARPA file's unigrams, and a
        binary LM is refused (flashlight's lexicon-free search does take an LM, but then the LM
        must be over characters, which ds2 LMs are not).
    lm_weight : float
        Weight of the LM log-probability (alpha); only used with an LM.
    word_score : float
        Score added per word (beta); used with a lexicon.
    frame_seconds : float
        Seconds per output frame, for word timings.
    device : str or torch.device
        ``"cuda"`` (when CUDA is available) runs the lexicon-free, LM-free search on the GPU with
        ``cuda_ctc_decoder``, except on GPUs where that decoder is broken
        (:func:`cuda_beam_search_works`); every other case runs flashlight on the CPU.
    beam_threshold : float
        Flashlight prunes hypotheses scoring this far below the best one.
    unk_score : float
        Score of a word outside the lexicon (-inf: only lexicon words).
    sil_score : float
        Score added per word boundary.
    log_add : bool
        Merge hypotheses that reach the same state by adding their probabilities (CTC prefix
        beam search: a transcript scores the sum over its alignments). False keeps only the best
        alignment's score (Viterbi), flashlight's default; without an LM that search returns the
        greedy transcript.

    Building a decoder with a large LM is slow, so built decoders are cached per settings
    (the files' paths, sizes and modification times included) and shared between instances.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        nbest: int = 5,
        lexicon=None,
        lm=None,
        lm_weight: float = 0.8,
        word_score: float = 0.0,
        frame_seconds: float = FRAME_SECONDS,
        device="cpu",
        beam_threshold: float = 50.0,
        unk_score: float = float("-inf"),
        sil_score: float = 0.0,
        log_add: bool = True,
    ):
        if beam_width < 1:
            raise DecoderError(f"beam_width must be at least 1, got {beam_width}")
        if nbest < 1:
            raise DecoderError(f"nbest must be at least 1, got {nbest}")
        self.vocab = vocab
        self.beam_width = int(beam_width)
        self.nbest = int(nbest)
        self.lexicon = _check_file(lexicon, "lexicon") if lexicon is not None else None
        self.lm = _check_file(lm, "language model") if lm is not None else None
        self.lm_weight = float(lm_weight)
        self.word_score = float(word_score)
        self.frame_seconds = float(frame_seconds)
        self.beam_threshold = float(beam_threshold)
        self.unk_score = float(unk_score)
        self.sil_score = float(sil_score)
        self.log_add = bool(log_add)
        self.tokens = flashlight_tokens(vocab)

        device = torch.device(device)
        use_cuda = (
            device.type == "cuda"
            and self.lm is None
            and self.lexicon is None
            and torch.cuda.is_available()
            and cuda_beam_search_works(device)
        )
        self.device = device if use_cuda else torch.device("cpu")
        self.backend = "cuda" if use_cuda else "flashlight"
        if use_cuda:
            try:
                self._entry = self._build_cuda()
                return
            except DecoderError as e:
                # a torchaudio build without the cuctc library: the CPU search still works
                warnings.warn(f"{e}; beam search runs on the CPU instead", stacklevel=2)
                self.device, self.backend = torch.device("cpu"), "flashlight"
        if self.lexicon is not None:
            _check_lexicon(self.lexicon, self.tokens)
        if self.lm is not None and self.lexicon is None and not is_arpa(self.lm):
            raise DecoderError(
                f"the binary LM {self.lm} needs a lexicon: pass lexicon=... (write one with "
                "ds2.decoding.write_lexicon), or use the LM's ARPA file, whose words then "
                "form the lexicon"
            )
        self._entry = self._build_flashlight()

    def __repr__(self) -> str:
        return (
            f"BeamSearchDecoder(backend={self.backend!r}, beam_width={self.beam_width}, "
            f"nbest={self.nbest}, lexicon={self.lexicon}, lm={self.lm}, "
            f"lm_weight={self.lm_weight}, word_score={self.word_score})"
        )

    # -- building -------------------------------------------------------------------------------

    def _build_flashlight(self) -> _Cached:
        key = (
            "flashlight",
            tuple(self.tokens),
            self.beam_width,
            self.beam_threshold,
            _file_key(self.lexicon),
            _file_key(self.lm),
            self.lm_weight if self.lm is not None else None,
            self.word_score,
            self.unk_score,
            self.sil_score,
            self.log_add,
        )
        return _cached(key, self._make_flashlight)

    def _make_flashlight(self):
        from torchaudio.models.decoder import ctc_decoder

        try:
            # flashlight reads the lexicon into memory while building: a temp file will do
            with tempfile.TemporaryDirectory(prefix="ds2-lexicon-") as tmp:
                lexicon = self.lexicon
                if self.lm is not None and lexicon is None:
                    lexicon = Path(tmp) / "lexicon.txt"
                    if write_lexicon(arpa_unigrams(self.lm), lexicon, self.vocab) == 0:
                        raise DecoderError(
                            f"the ARPA file {self.lm} has no word spelt with the vocabulary"
                        )
                lm = _kenlm(self.lm, lexicon, self.lexicon) if self.lm is not None else None
                return ctc_decoder(
                    lexicon=str(lexicon) if lexicon is not None else None,
                    tokens=self.tokens,
                    lm=lm,
                    # every final hypothesis comes back: n-best is cut after merging equal texts
                    nbest=self.beam_width,
                    beam_size=self.beam_width,
                    beam_threshold=self.beam_threshold,
                    lm_weight=self.lm_weight,
                    word_score=self.word_score,
                    unk_score=self.unk_score,
                    sil_score=self.sil_score,
                    log_add=self.log_add,
                    blank_token=BLANK,
                    sil_token=SIL_TOKEN,
                    unk_word=UNK_WORD,
                )
        except DecoderError:
            raise
        except Exception as e:  # KenLM and flashlight raise RuntimeError on unreadable files
            said = "; ".join(getattr(e, "__notes__", []))  # what KenLM printed, if anything
            raise DecoderError(
                f"could not build the beam search decoder: {e}" + (f" ({said})" if said else "")
            ) from e

    def _build_cuda(self) -> _Cached:
        key = ("cuda", tuple(self.tokens), self.beam_width, self.nbest, str(self.device))

        def make():
            from torchaudio.models.decoder import cuda_ctc_decoder

            # cuctc wants blank at id 0, which Vocabulary guarantees; it caps the beam at the
            # vocabulary size and returns exactly nbest hypotheses, so nbest <= beam
            beam = min(self.beam_width, len(self.tokens))
            with torch.cuda.device(self.device):
                return cuda_ctc_decoder(self.tokens, nbest=min(self.nbest, beam), beam_size=beam)

        try:
            return _cached(key, make)
        except Exception as e:
            raise DecoderError(f"could not build the CUDA beam search decoder: {e}") from e

    # -- decoding -------------------------------------------------------------------------------

    def __call__(self, log_probs) -> list[Hypothesis]:
        """N-best hypotheses of one utterance, best first.

        log_probs : torch.Tensor or np.ndarray, shape = (n_frames, vocab_size)
        """
        if isinstance(log_probs, np.ndarray):
            log_probs = torch.from_numpy(log_probs)
        if not isinstance(log_probs, torch.Tensor) or log_probs.ndim != 2:
            shape = tuple(getattr(log_probs, "shape", ()))
            raise DecoderError(f"log_probs must have shape (n_frames, vocab_size), got {shape}")
        lengths = torch.tensor([log_probs.shape[0]])
        return self.decode_batch(log_probs[None], lengths)[0]

    def decode_batch(self, log_probs, lengths=None) -> list[list[Hypothesis]]:
        """N-best hypotheses of each utterance of a padded batch.

        log_probs : torch.Tensor or np.ndarray, shape = (batch, n_frames, vocab_size)
        lengths : torch.Tensor, shape = (batch,), optional
            Valid output frames per utterance (all frames when omitted).
        """
        if isinstance(log_probs, np.ndarray):
            log_probs = torch.from_numpy(log_probs)
        if not isinstance(log_probs, torch.Tensor) or log_probs.ndim != 3:
            shape = tuple(getattr(log_probs, "shape", ()))
            raise DecoderError(f"log_probs must have shape (batch, n_frames, vocab), got {shape}")
        batch, n_frames, n_vocab = log_probs.shape
        if n_vocab != len(self.vocab):
            raise DecoderError(
                f"log_probs have {n_vocab} symbols, the vocabulary {len(self.vocab)}"
            )
        if lengths is None:
            lengths = torch.full((batch,), n_frames, dtype=torch.long)
        lengths = torch.as_tensor(lengths).to("cpu", torch.long).reshape(-1)
        if lengths.numel() != batch or (lengths < 0).any() or (lengths > n_frames).any():
            raise DecoderError(
                f"lengths must hold {batch} values in 0..{n_frames}, got {lengths.tolist()}"
            )
        log_probs = log_probs.detach()
        if self.backend == "cuda":
            return self._decode_cuda(log_probs, lengths)
        return self._decode_flashlight(log_probs, lengths)

    def _decode_flashlight(self, log_probs, lengths) -> list[list[Hypothesis]]:
        emissions = log_probs.to("cpu", torch.float32).contiguous()  # (batch, n_frames, vocab)
        n_vocab = emissions.shape[2]
        with_lexicon = self.lexicon is not None or self.lm is not None
        if with_lexicon:
            # Lexicon spellings end with "|", but a model trained on "words between spaces"
            # emits no space after the last word: one extra frame where "|" is certain lets
            # the last word end without charging it a frame of improbable "|".
            sil_frame = torch.full((1, n_vocab), _NOT_SPACE_LOGP)  # (1, vocab)
            sil_frame[0, self.vocab.space_id] = 0.0
        out = []
        for b, n in enumerate(lengths.tolist()):
            lp = emissions[b, :n]  # (n, vocab), a contiguous view
            if n == 0:
                out.append([Hypothesis(text="", score=0.0)])
                continue
            x = torch.cat([lp, sil_frame]) if with_lexicon else lp  # (n or n + 1, vocab)
            with self._entry.lock:
                # The raw results keep each hypothesis' frame-level path (torchaudio's
                # CTCHypothesis drops it and reports timesteps shifted by the leading silence).
                # x must stay alive during the call: flashlight reads it through the pointer.
                results = self._entry.decoder.decoder.decode(x.data_ptr(), x.shape[0], n_vocab)
            hyps = []
            for r in results:
                if with_lexicon:
                    hyps.append(self._lexicon_result(r, lp))
                    continue
                path = list(r.tokens)
                if len(path) == x.shape[0] + 2:  # flashlight brackets the path with silences
                    path = path[1:-1]
                hyps.append((float(r.score), path[:n]))
            out.append(self._finish(hyps, lp))
        return out

    def _lexicon_result(self, r, lp: torch.Tensor) -> tuple[float, list[int]]:
        """Score and frame path of one lexicon-search result, cut back to its last whole word.

        r : flashlight DecodeResult
            Of a search over ``lp`` plus the word-boundary frame ``_decode_flashlight``
            appends; ``r.tokens`` holds one id per frame, bracketed by two silences, and
            ``r.words`` a word id on the frame where a word ends, -1 elsewhere.
        lp : torch.Tensor, shape = (n_frames, vocab_size)

        Flashlight returns paths that end inside a word when no hypothesis of the final beam
        sits on a word boundary. The characters after the last completed word spell no lexicon
        word, so they become blanks, and the score becomes that of the path returned: the
        acoustic score of the new path over the model's frames (the appended frame is ours and
        costs nothing), plus flashlight's word, silence and weighted LM scores minus the LM
        look-ahead it had credited to the dropped partial word.
        """
        n = lp.shape[0]
        path, word_ends = list(r.tokens)[1:-1], list(r.words)[1:-1]
        if len(path) != n + 1 or len(word_ends) != n + 1:
            raise DecoderError(
                f"flashlight returned a path of {len(r.tokens)} frames for {n + 1} frames"
            )
        last = max((t for t, w in enumerate(word_ends) if w >= 0), default=-1)
        keep = (self.vocab.blank_id, self.vocab.space_id)
        partial = any(i not in keep for i in path[last + 1 :])
        if partial:
            path = path[: last + 1] + [
                i if i in keep else self.vocab.blank_id for i in path[last + 1 :]
            ]
        path = path[:n]
        frames = torch.arange(n)
        acoustic = float(lp[frames, torch.tensor(path, dtype=torch.long)].double().sum())
        score = float(r.score) - float(r.emittingModelScore) + acoustic
        if partial and self.lm is not None:
            # flashlight's LM score telescopes to the words' LM score plus, for a path ending
            # inside a word, the look-ahead (best word score under that prefix) of the prefix
            lm = self._entry.decoder.lm
            state = lm.start(False)
            words_lm = 0.0
            for w in word_ends:
                if w >= 0:
                    state, s = lm.score(state, w)
                    words_lm += s
            words_lm += lm.finish(state)[1]
            score -= self.lm_weight * (float(r.lmScore) - words_lm)
        return score, path

    def _decode_cuda(self, log_probs, lengths) -> list[list[Hypothesis]]:
        import torchaudio.functional as F

        emissions = log_probs.to(self.device, torch.float32).contiguous()
        with self._entry.lock:
            results = self._entry.decoder(emissions, lengths.to(self.device, torch.int32))
        out = []
        for b, n in enumerate(lengths.tolist()):
            lp = emissions[b, :n]
            hyps = []
            for r in results[b]:
                tokens = [int(i) for i in r.tokens if int(i) != self.vocab.blank_id]
                # cuctc gives no alignment: recover each hypothesis' best path by Viterbi
                if tokens and n > 0:
                    targets = torch.tensor([tokens], dtype=torch.int32, device=self.device)
                    try:
                        path, _ = F.forced_align(lp[None], targets, blank=self.vocab.blank_id)
                        path = path[0].tolist()
                    except RuntimeError:  # no alignment fits: fall back to the greedy path
                        path = lp.argmax(-1).tolist()
                else:
                    path = [self.vocab.blank_id] * n
                hyps.append((float(r.score), path))
            out.append(self._finish(hyps, lp.cpu()))
        return out

    def _finish(self, hyps: list[tuple[float, list[int]]], lp: torch.Tensor) -> list[Hypothesis]:
        """Turn (score, frame path) pairs into distinct-text Hypotheses, best first."""
        out: list[Hypothesis] = []
        seen = set()
        for score, path in sorted(hyps, key=lambda h: -h[0]):
            tokens, timesteps = _path_to_tokens(path, self.vocab.blank_id)
            tokens, timesteps = _tidy_spaces(tokens, timesteps, self.vocab.space_id)
            text = self.vocab.decode(tokens)
            if text in seen:
                continue
            seen.add(text)
            words = word_timings(
                tokens,
                timesteps,
                lp,
                self.vocab,
                self.frame_seconds,
                path=torch.tensor(path, dtype=torch.long),
            )
            out.append(Hypothesis(text, score, tokens, timesteps, words))
            if len(out) == self.nbest:
                break
        return out or [Hypothesis(text="", score=0.0)]


def decode_batch(
    log_probs, lengths, vocab: Vocabulary, frame_seconds: float = FRAME_SECONDS
) -> list[Hypothesis]:
    """Greedy decoding of a padded batch.

    log_probs : torch.Tensor, shape = (batch, n_frames, vocab_size)
    lengths : torch.Tensor, shape = (batch,)
    """
    if isinstance(log_probs, np.ndarray):
        log_probs = torch.from_numpy(log_probs)
    if log_probs.ndim != 3:
        raise DecoderError(
            f"log_probs must have shape (batch, n_frames, vocab), got {tuple(log_probs.shape)}"
        )
    lengths = torch.as_tensor(lengths).reshape(-1).tolist()
    if len(lengths) != log_probs.shape[0]:
        raise DecoderError(f"{log_probs.shape[0]} utterances but {len(lengths)} lengths")
    return [greedy_decode(log_probs[b, :n], vocab, frame_seconds) for b, n in enumerate(lengths)]
