"""Text normalisation: map real-world text onto the character vocabulary.

``normalize_text("Dr. O’Neil paid $5 on the 3rd!")`` -> ``"dr o'neil paid five dollars on the third"``.
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
            return number_to_words(high) + " " + name + (" " + number_to_words(rest) if rest else "")
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
_CURRENCY = {"$": "dollars", "\u00a3": "pounds", "\u20ac": "euros"}
_NUM = re.compile(r"([$\u00a3\u20ac]?)(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th)?", re.IGNORECASE)


def _expand_number(m: re.Match) -> str:
    currency, digits, suffix = m.group(1), m.group(2).replace(",", ""), m.group(3)
    if "." in digits:
        whole, frac = digits.split(".", 1)
        words = number_to_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in frac)
    elif suffix:
        words = ordinal_to_words(int(digits))
    elif not currency and len(digits) == 4 and 1100 <= int(digits) <= 2099:
        words = _year_to_words(int(digits))
    else:
        words = number_to_words(int(digits))
    if currency:
        words += " " + _CURRENCY[currency]
    return f" {words} "


def normalize_text(text: str) -> str:
    """Lower-case ``text`` and reduce it to the characters ``' a-z`` and single spaces."""
    text = text.translate(_QUOTES)
    text = _NUM.sub(_expand_number, text)
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, word)
    # Strip accents: "café" -> "cafe". NFKD splits letters from combining marks.
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z']+", " ", text)
    # Apostrophes only survive inside words ("don't", "o'neil"), not as quotation marks.
    text = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", text)
    return " ".join(text.split())
