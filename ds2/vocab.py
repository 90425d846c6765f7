"""Character vocabulary: blank first, then space, apostrophe and a-z.

The vocabulary is stored in every checkpoint's ``config.json`` (``"vocab": [...]``), so a model
never depends on a side file to be decoded.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

BLANK = "<blank>"
SPACE = " "
DEFAULT_TOKENS: tuple[str, ...] = (BLANK, SPACE, "'", *string.ascii_lowercase)  # 29 symbols


@dataclass(frozen=True)
class Vocabulary:
    """Maps characters to ids and back. Id 0 is always the CTC blank."""

    tokens: tuple[str, ...] = field(default=DEFAULT_TOKENS)

    def __post_init__(self):
        tokens = tuple(self.tokens)
        object.__setattr__(self, "tokens", tokens)
        if not tokens or tokens[0] != BLANK:
            raise ValueError(f"the first token must be the blank {BLANK!r}, got {tokens[:1]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        if SPACE not in tokens:
            raise ValueError("the vocabulary needs a space token for word boundaries")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def space_id(self) -> int:
        return self._index[SPACE]

    def encode(self, text: str) -> list[int]:
        """Ids of an already normalised text. Characters outside the vocabulary are an error."""
        try:
            return [self._index[c] for c in text]
        except KeyError as e:
            raise ValueError(
                f"character {e.args[0]!r} is not in the vocabulary; normalise the text first "
                "with ds2.text.normalize_text"
            ) from None

    def decode(self, ids) -> str:
        """Text of a sequence of ids (no CTC collapse; blanks are dropped)."""
        return "".join(self.tokens[i] for i in ids if i != 0)

    def to_list(self) -> list[str]:
        return list(self.tokens)
