"""The linear-time pattern engine behind ``matches`` and ``replace``: the language
it accepts (and the message for everything it refuses), agreement with Python's
``re`` on that language, and bounded work on inputs that make ``re`` backtrack."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.mapping._patterns import (
    MAX_INPUT_LENGTH,
    MAX_PATTERN_LENGTH,
    MAX_REPEAT,
    Pattern,
    RegexError,
    compile_pattern,
)

AGREEING = [
    r"@example\.com$",
    r"^a+b*$",
    r"(a|ab)(c|bcd)(d*)",
    r"x*",
    r"^$",
    r"a|",
    r"(?i)ADMIN",
    r"(?i)[A-C]+$",
    r"[^@]+@[^@]+",
    r"^\w+$",
    r"\d{2,3}",
    r"a{,2}b",
    r"a{2}",
    r"a{1,}b",
    r"^(\w+\s?)*$",
    r"[a\-z]",
    r"[]a]",
    r"[^]a]",
    r"a{x}",
    r"(?s)a.b",
    r"a.b",
    r"(?:ab)+",
    r"(?P<n>ab)c",
    r"\Aab",
    r"[\d.]+",
    r"[\w-]+",
    r"\S+\s\S+",
    r"\D\W",
    "é",
    r"(?i)É",
    r"a*?b",
    r"[\t\n]",
    r"a\.b\*\?",
    r"[a-c][^a-c]",
]
ALPHABET = "abcdxyz@.é\nAB =-_1É\t"


@pytest.mark.parametrize("pattern", AGREEING)
@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=10))
def test_search_agrees_with_python_re(pattern: str, text: str) -> None:
    # '$' means the very end of the value here (Python's '$' also matches before a final newline).
    expected = re.search(pattern.replace("$", r"\Z"), text) is not None
    assert compile_pattern(pattern).search(text) is expected


def test_dollar_does_not_match_before_a_trailing_newline() -> None:
    pattern = compile_pattern(r"@example\.com$")
    assert re.search(r"@example\.com$", "a@example.com\n")  # Python's re would accept it
    assert not pattern.search("a@example.com\n")
    assert compile_pattern(r"^ab\Z").search("ab") and compile_pattern(r"^ab\z").search("ab")
    assert compile_pattern("$^").search("") and not compile_pattern("$^").search("a")


def test_case_insensitive_flag_and_unicode_classes() -> None:
    assert compile_pattern("(?i)admins").search("ADMINS")
    assert not compile_pattern("admins").search("ADMINS")
    assert compile_pattern(r"^\w+$").search("José") and compile_pattern(r"^\d+$").search("٣٤")
    assert compile_pattern(r"(?is)a.b").search("A\nB") and not compile_pattern("a.b").search("a\nb")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a", "missing ), unterminated subpattern"),
        ("a)", "unbalanced parenthesis"),
        ("*a", "nothing to repeat"),
        ("a|*", "nothing to repeat"),
        ("^*", "nothing to repeat"),
        ("{2}", "nothing to repeat"),
        ("a**", "multiple repeat"),
        ("a{2}{3}", "multiple repeat"),
        (r"(a)\1", "backreferences and octal escapes are not supported"),
        ("(?P<x>a)(?P=x)", "backreferences are not supported"),
        ("(?=a)", "lookaround assertions are not supported"),
        ("(?!a)", "lookaround assertions are not supported"),
        ("(?<=a)b", "lookaround assertions are not supported"),
        ("(?<!a)b", "lookaround assertions are not supported"),
        ("(?>a)", "atomic groups are not supported"),
        ("(?#c)", "comments are not supported"),
        ("(?i:a)", "flags are supported only as (?i) or (?s) at the start of the pattern"),
        ("x(?i)", "flags are supported only as (?i) or (?s) at the start of the pattern"),
        ("(?m)^a", "flags are supported only as (?i) or (?s) at the start of the pattern"),
        ("(?Q)", "unsupported group syntax"),
        ("(?P<1>a)", "bad group name"),
        (r"\bword\b", r"word boundaries (\b, \B) are not supported"),
        (r"\q", r"bad escape \q"),
        (r"\x41", r"bad escape \x"),
        ("a\\", "bad escape (end of pattern)"),
        ("[a\\", "bad escape (end of pattern)"),
        ("a*+", "possessive quantifiers are not supported"),
        ("a{2,1}", "min repeat greater than max repeat"),
        (f"a{{{MAX_REPEAT + 1}}}", f"repeat counts above {MAX_REPEAT} are not supported"),
        ("[z-a]", "bad character range"),
        (r"[a-\d]", "bad character range"),
        ("[a", "unterminated character set"),
        ("(" * 51 + ")" * 51, "groups nested too deeply"),
        ("(a{100}){100}", "pattern too large"),
        ("a" * (MAX_PATTERN_LENGTH + 1), f"pattern longer than {MAX_PATTERN_LENGTH} characters"),
    ],
)
def test_refused_patterns_say_why(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as err:
        Pattern(pattern)
    assert message in str(err.value)


def test_lazy_quantifiers_are_refused_where_they_would_change_the_result() -> None:
    assert Pattern("a+?", allow_lazy=True).search("a")
    with pytest.raises(RegexError, match="lazy quantifiers are not supported here"):
        Pattern("a+?", allow_lazy=False)


def test_values_over_the_input_bound_are_not_run() -> None:
    with pytest.raises(ValueError, match="too long"):
        compile_pattern("a").search("a" * (MAX_INPUT_LENGTH + 1))
    with pytest.raises(ValueError, match="too long"):
        compile_pattern("a").sub("b", "a" * (MAX_INPUT_LENGTH + 1))
    assert compile_pattern("a$").search("b" * (MAX_INPUT_LENGTH - 1) + "a")


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (".*.*.*=", "a" * MAX_INPUT_LENGTH),  # about 30 s with Python's re
        (r"\w*\w*\w*x", "a" * MAX_INPUT_LENGTH),  # about 100 s with Python's re
        (r"^(\w+\s?)*$", "a" * (MAX_INPUT_LENGTH - 1) + "!"),  # exponential with Python's re
        ("(a|a)*b", "a" * MAX_INPUT_LENGTH),
        (r"(x+x+)+y", "x" * MAX_INPUT_LENGTH),
    ],
)
def test_backtracking_bombs_cost_one_dfa_state_per_character_at_most(pattern: str, text: str) -> None:
    compiled = Pattern(pattern)
    assert compiled.search(text) is False
    # RE2 runs in time linear in the value (timings: tests/mapping/test_regex_re2.py).


def test_the_dfa_cache_starts_over_when_full_and_stays_correct() -> None:
    compiled = Pattern(r"(a|b)*a(a|b){12}$")  # exponentially many DFA states
    import random

    rng = random.Random(7)
    for _ in range(200):
        text = "".join(rng.choice("ab") for _ in range(40))
        expected = re.search(r"(a|b)*a(a|b){12}\Z", text) is not None
        assert compiled.search(text) is expected


def ref_sub(pattern: str, replacement: str, text: str) -> str:
    """Leftmost-longest, non-overlapping replacement, by brute force with Python's re."""
    compiled = re.compile(pattern)
    out, pos, copied, n = [], 0, 0, len(text)
    while pos <= n:
        end = next((e for e in range(n, pos - 1, -1) if compiled.fullmatch(text, pos, e)), -1)
        if end < 0:
            pos += 1
            continue
        out += [text[copied:pos], replacement]
        if end == pos:
            out.append(text[pos : pos + 1])
            copied = pos = pos + 1
        else:
            copied = pos = end
    out.append(text[copied:])
    return "".join(out)


@pytest.mark.parametrize(
    "pattern", [r"x*", r"[^a-z0-9]+", r"ab|a", r"a+", r"\s+", r"@.*", r"(ab)+", r"b?", "[ab]{2}"]
)
@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="abx@ .-", max_size=10))
def test_sub_replaces_leftmost_longest_matches(pattern: str, text: str) -> None:
    assert compile_pattern(pattern, allow_lazy=False).sub("-", text) == ref_sub(pattern, "-", text)


def test_sub_examples() -> None:
    assert compile_pattern("x*").sub("-", "abxd") == re.sub("x*", "-", "abxd") == "-a-b--d-"
    assert compile_pattern("^/").sub("", "/staff/sub") == "staff/sub"
    assert compile_pattern("ab|abc").sub("X", "abcab") == "XX"  # longest, where Python's re gives "Xc" + "X"
    assert compile_pattern("$").sub("!", "ab") == "ab!"
    assert compile_pattern("^").sub(">", "") == ">"


def test_sub_completes_where_the_old_engine_gave_up() -> None:
    # The hand-written engine ran out of its budget here (TooCostly); RE2 scans once.
    assert compile_pattern("x.*y", allow_lazy=False).sub("-", "x" * 500) == "x" * 500
    assert compile_pattern("x.*y", allow_lazy=False).sub("-", "x" * 20) == "x" * 20


def test_compiled_patterns_are_shared() -> None:
    assert compile_pattern("abc") is compile_pattern("abc")
    assert repr(compile_pattern("abc")) == "Pattern('abc')"


def test_one_pattern_is_safe_to_share_between_threads() -> None:
    import random
    import threading

    compiled = Pattern(r"(a|b)*a(a|b){9}$")  # many DFA states: the cache starts over while threads run
    expected_re = re.compile(r"(a|b)*a(a|b){9}\Z")
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            text = "".join(rng.choice("ab") for _ in range(30))
            if compiled.search(text) is not (expected_re.search(text) is not None):
                failures.append(text)
            replaced = compile_pattern("b+", allow_lazy=False).sub("-", text)
            if replaced != re.sub("b+", "-", text):
                failures.append(text)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
