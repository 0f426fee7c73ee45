"""Mapping patterns on RE2: linear time on 100 KB adversarial values, and the same
answers as Python's ``re`` on a differential corpus of the portable subset."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from federation.mapping import _patterns
from federation.mapping._patterns import Pattern, RegexError

CATASTROPHIC = [r"(a+)+$", r"(a|aa)*b", r"((a*)*)*b", r"(a|a?)+$", r".*.*.*=", r"^(\w+\s?)*$"]


def _min_time(pattern: Pattern, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        pattern.search(text)
        pattern.sub("-", text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("source", CATASTROPHIC)
def test_backtracking_bombs_run_in_linear_time_on_100_kb(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mapping caps values at MAX_INPUT_LENGTH; lifted here to measure the engine itself.
    monkeypatch.setattr(_patterns, "MAX_INPUT_LENGTH", 200_000)
    pattern = Pattern(source)
    small, large = "a" * 10_000 + "!", "a" * 100_000 + "!"
    # Only (a|a?)+$ matches (a? is empty at the end); re would backtrack exponentially to say so.
    assert pattern.search(large) is (source == r"(a|a?)+$")
    ratio = _min_time(pattern, large) / max(_min_time(pattern, small), 1e-6)
    assert ratio < 40, f"{source}: 100 KB took {ratio:.1f}x the time of 10 KB"


ATOMS = ["a", "b", ".", "[ab]", "[^a]", r"\d", r"\w", r"\s", r"\W", "é", "(?:a|b)", "[a-zé]", "K", "ß"]
QUANTIFIERS = ["", "*", "+", "?", "{2}", "{1,2}", "{,2}"]
FLAGS = ["", "(?i)", "(?s)"]
INPUTS = [
    "",
    "a",
    "ab",
    "ba",
    "aab",
    "A",
    "É",
    "é",
    "\u212a",
    "k",
    "1",
    "\u0661",
    " ",
    "\n",
    "\u017f",
    "SS",
    "ß",
    "a\nb",
    "_x9",
]


def _corpus() -> list[str]:
    out: list[str] = []
    for flag, (a1, a2), q in itertools.product(FLAGS, itertools.combinations(ATOMS, 2), QUANTIFIERS):
        out.append(f"{flag}^{a1}{q}{a2}")
        out.append(f"{flag}{a1}|{a2}{q}$")
    return out


def test_patterns_agree_with_re_on_a_differential_corpus() -> None:
    corpus = _corpus()
    assert len(corpus) > 2000
    refused = 0
    for source in corpus:
        try:
            ours = _patterns.compile_pattern(source)
        except RegexError:
            refused += 1
            continue
        theirs = re.compile(source.replace("$", r"\Z"))
        for text in INPUTS:
            assert ours.search(text) == (theirs.search(text) is not None), (source, text)
    assert refused == 0  # every pattern of the corpus is in the portable subset


@pytest.mark.parametrize(
    "source",
    [r"\C", r"\pN", r"\p{Greek}", r"(?P=x)", r"(?=a)", r"\b", r"(?m)^a", r"a++", r"\1", r"[[:alpha:]]x\Q"],
)
def test_re2_only_or_backtracking_syntax_is_refused(source: str) -> None:
    try:
        Pattern(source)
    except RegexError as exc:
        assert "(at position" in str(exc)
    else:  # "[[:alpha:]]" is a plain class in re; the \Q after it is not
        pytest.fail(f"{source} was accepted")
