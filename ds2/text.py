"""Text normalisation: map real-world text onto the character vocabulary.

``normalize_text("Dr. O’Neil paid $5 on the 3rd!")``
-> ``"dr o'neil paid five dollars on the third"``.
Case is folded, digits become words, unicode quotes become the ASCII apostrophe, and every other
character outside ``' a-z`` becomes a word break.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer: 342 -> 'three hundred forty two'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return (
                number_to_words(high) + " " + name + (" " + number_to_words(rest) if rest else "")
            )
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    """Ordinal English words: 3 -> 'third', 21 -> 'twenty first', 40 -> 'fortieth'."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return " ".join(words[:-1] + [last])


def _year_to_words(n: int) -> str:
    # 1984 -> nineteen eighty four, 2005 -> two thousand five, 1900 -> nineteen hundred
    if 2000 <= n < 2010 or n % 1000 == 0:
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    return number_to_words(high) + " " + ("oh " + _ONES[low] if low < 10 else number_to_words(low))


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals "}
# Vulgar fractions read as words; NFKC would turn them into digits around a fraction slash.
_FRACTIONS = {"\u00bd": " one half ", "\u00bc": " one quarter ", "\u00be": " three quarters "}
# (unit, plural, hundredth, plural): "$5.50" is read "five dollars fifty cents".
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "\u00a3": ("pound", "pounds", "penny", "pence"),
    "\u20ac": ("euro", "euros", "cent", "cents"),
}
# Letters that NFKD does not split into a base letter and a mark.
_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
# Digits grouped by thousands ("1,000,000") or plain; a comma elsewhere ("1,2,3") separates.
# The suffix counts only when no letter follows it: "4th" and "1990s", not "5sec".
_NUM = re.compile(
    r"([$\u00a3\u20ac]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:(st|nd|rd|th|s)(?![a-z]))?",
    re.IGNORECASE,
)


def _plural(words: str) -> str:
    """'nineteen ninety' -> 'nineteen nineties' (decades: "1990s")."""
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}".strip()


def _money(whole: int, cents: int | None, names: tuple[str, str, str, str]) -> str:
    unit, units, sub, subs = names
    parts = []
    if whole or not cents:
        parts.append(number_to_words(whole) + " " + (unit if whole == 1 else units))
    if cents:
        parts.append(number_to_words(cents) + " " + (sub if cents == 1 else subs))
    return " ".join(parts)


def _expand_number(m: re.Match) -> str:
    currency, digits, frac, suffix = m.group(1), m.group(2).replace(",", ""), m.group(3), m.group(4)
    n = int(digits)
    suffix = (suffix or "").lower()
    if currency and (frac is None or len(frac) == 3):
        return f" {_money(n, int(frac[1:]) if frac else None, _CURRENCY[currency])} "
    if frac:
        words = number_to_words(n) + " point " + " ".join(_ONES[int(d)] for d in frac[1:])
    elif suffix in ("st", "nd", "rd", "th"):
        words = ordinal_to_words(n)
    elif len(digits) == 4 and 1100 <= n <= 2099:
        words = _year_to_words(n)
    else:
        words = number_to_words(n)
    if suffix == "s":
        words = _plural(words)
    if currency:
        words += " " + _CURRENCY[currency][1]
    return f" {words} "


def normalize_text(text: str) -> str:
    """Lower-case ``text`` and reduce it to the characters ``' a-z`` and single spaces."""
    text = text.translate(_QUOTES)
    for frac, words in _FRACTIONS.items():
        text = text.replace(frac, words)
    # Compatibility forms first ("１２" -> "12", "x²" -> "x2", "ﬁ" -> "fi"), so that no digit
    # escapes number expansion and vanishes later as punctuation.
    text = unicodedata.normalize("NFKC", text)
    text = _NUM.sub(_expand_number, text)
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, word)
    # Strip accents: "café" -> "cafe". NFKD splits letters from combining marks.
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().translate(_LETTERS)
    text = re.sub(r"[^a-z']+", " ", text)
    text = re.sub(r"'{2,}", "'", text)  # "don''t" (typed quotes) -> "don't"
    # Apostrophes only survive inside words ("don't", "o'neil"), not as quotation marks.
    text = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", text)
    return " ".join(text.split())
