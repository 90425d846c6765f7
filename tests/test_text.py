"""normalize_text: real-world text onto the character vocabulary (lower-case ' a-z and spaces)."""

from __future__ import annotations

import random
import re

import pytest

from ds2.text import normalize_text, number_to_words, ordinal_to_words
from ds2.vocab import Vocabulary


@pytest.mark.parametrize(
    "text, expected",
    [
        # case and whitespace
        ("HELLO World", "hello world"),
        ("  tabs\tand\nnew lines  ", "tabs and new lines"),
        ("", ""),
        ("   ", ""),
        # digits
        ("7 dwarfs", "seven dwarfs"),
        ("42", "forty two"),
        ("100", "one hundred"),
        ("1001 nights", "one thousand one nights"),
        ("123456", "one hundred twenty three thousand four hundred fifty six"),
        ("1,000,000", "one million"),
        ("1,2,3", "one two three"),
        ("3.14", "three point one four"),
        ("0.5", "zero point five"),
        ("mp3", "mp three"),
        ("it's 3:30", "it's three thirty"),
        ("\uff11\uff12 apples", "twelve apples"),  # full-width digits
        ("\u0663 apples", "three apples"),  # Arabic-Indic digit
        ("x\u00b2", "x two"),  # superscript
        ("\u00bd cup", "one half cup"),
        # ordinals
        ("1st 2nd 3rd 4th", "first second third fourth"),
        ("11th 12th 13th", "eleventh twelfth thirteenth"),
        ("21st 22nd 23rd", "twenty first twenty second twenty third"),
        ("40th 100th 101st", "fortieth one hundredth one hundred first"),
        ("the 3RD time", "the third time"),
        ("1st-rate", "first rate"),
        # years and decades
        ("in 1984", "in nineteen eighty four"),
        ("1905", "nineteen oh five"),
        ("1900", "nineteen hundred"),
        ("2000", "two thousand"),
        ("2005", "two thousand five"),
        ("2010", "twenty ten"),
        ("2024", "twenty twenty four"),
        ("1100", "eleven hundred"),
        ("2100", "two thousand one hundred"),
        ("the 1990s", "the nineteen nineties"),
        ("the '80s", "the eighties"),
        ("the 1900s", "the nineteen hundreds"),
        # currency
        ("$5", "five dollars"),
        ("$1", "one dollar"),
        ("$5.50", "five dollars fifty cents"),
        ("$0.99", "ninety nine cents"),
        ("$1.01", "one dollar one cent"),
        ("$1,000", "one thousand dollars"),
        ("$1.5", "one point five dollars"),
        ("\u00a31.50", "one pound fifty pence"),
        ("\u00a30.01", "one penny"),
        ("\u20ac2", "two euros"),
        ("\u20ac1", "one euro"),
        ("10%", "ten percent"),
        # unicode quotes and apostrophes
        ("Dr. O\u2019Neil paid $5 on the 3rd!", "dr o'neil paid five dollars on the third"),
        ("don\u2018t", "don't"),
        ("don`t won\u02bct", "don't won't"),
        ("\u201cdouble\u201d quotes", "double quotes"),
        ("'single' quotes", "single quotes"),
        ("\u2018curly\u2019 quotes", "curly quotes"),
        ("the dogs' bones", "the dogs bones"),
        ("rock 'n' roll", "rock n roll"),
        ("don''t", "don't"),
        ("O'Neil's", "o'neil's"),
        # punctuation and symbols
        ("Hello, world! How... are-you?", "hello world how are you"),
        ("a\u2014b \u2013 c\u2026d", "a b c d"),
        ("5 & 6 + 7 = 18 @ 3", "five and six plus seven equals eighteen at three"),
        ("#hashtag <b>bold</b>", "hashtag b bold b"),
        # accents and special letters
        ("caf\u00e9 na\u00efve \u00c5ngstr\u00f6m", "cafe naive angstrom"),
        ("Stra\u00dfe", "strasse"),
        ("\u00c6sop's \u0153uvre", "aesop's oeuvre"),
        ("\u00d8re \u0141\u00f3d\u017a", "ore lodz"),
        ("\ufb01ne", "fine"),  # ligature
        ("\u00d1and\u00fa", "nandu"),
        # scripts outside the vocabulary become word breaks, never unknown characters
        ("\u4f60\u597d world", "world"),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (20, "twenty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1_000_001, "one million one"),
        (2_000_000_000, "two billion"),
        (-3, "minus three"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_ordinal_to_words():
    assert [ordinal_to_words(n) for n in (1, 2, 3, 5, 8, 9, 12, 20, 33, 1000)] == [
        "first",
        "second",
        "third",
        "fifth",
        "eighth",
        "ninth",
        "twelfth",
        "twentieth",
        "thirty third",
        "one thousandth",
    ]


def test_output_alphabet_and_idempotence_on_random_text():
    """Whatever comes in, the output fits the vocabulary, is tidy, and is a fixed point."""
    vocab = Vocabulary()
    rng = random.Random(0)
    pool = (
        "abcXYZ019 ,.;:!?'\"-_/\\()[]{}$\u00a3\u20ac%&@+=#*\t\n"
        "\u00e9\u00c5\u00df\u00e6\u0153\u00f8\u2019\u2018\u201c\u201d\u2014\u2026"
        "\u00bd\u00b2\uff11\u0663\u4f60\u0416\u05d0\U0001f600"
    )
    for _ in range(500):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        out = normalize_text(text)
        assert re.fullmatch(r"([a-z']+( [a-z']+)*)?", out), (text, out)
        assert not re.search(r"(^|\s)'|'($|\s)", out), (text, out)  # no quote-like apostrophes
        assert normalize_text(out) == out, (text, out)
        vocab.encode(out)  # every character is in the vocabulary
