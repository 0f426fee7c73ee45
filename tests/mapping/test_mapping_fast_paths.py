"""The mapping engine's fast paths give the answers of the plain ones.

Patterns: a plain-string pattern is answered by ``str`` methods, an anchored one is
searched once by ``sub``, and an ASCII value goes straight to the RE2 program; each is
compared here with google-re2's public ``search`` on the same program (the path taken
when none applies) and, where leftmost-first and leftmost-longest agree, with ``re``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.mapping import _patterns
from federation.mapping._patterns import Pattern

PATTERNS = [
    "^/", "/", "^/$", "/$", "ab", "^ab", "ab$", "^ab$", "aa", "aa$", "^aa", "é", "^é", "(?i)^/",
    "(?s)^a.", "a*", "^a*", "^", "$", "^$", "", "x|^a", "^a|^b", "^a|b", "(?:^a)*", "[^a-z0-9]+",
    "(?i)k", "a+", "(?s).", ".", r"\d+", "a|", "^(?:a|)", r"\.", r"^\$", "[.]", "(?i)ss", "\ufffd",
]  # fmt: skip
TEXT = st.text(alphabet=st.sampled_from("ab/é.$\ud800\ufffdkK\u212a\n-1ßs") | st.characters(), max_size=12)


def _reference(pattern: Pattern) -> Pattern:
    """The same pattern with every fast path off: google-re2's public search on every value."""
    plain = Pattern(pattern.source, allow_lazy=True)
    plain._literal = None
    plain._search_raw = None
    plain._longest_raw = None
    plain.anchored = False
    return plain


@pytest.mark.parametrize("source", PATTERNS)
@settings(max_examples=120, deadline=None)
@given(text=TEXT)
def test_search_and_replace_agree_with_the_plain_path(source: str, text: str) -> None:
    fast = Pattern(source)
    plain = _reference(fast)
    assert fast.search(text) is plain.search(text)
    assert fast.sub("<R>", text) == plain.sub("<R>", text)
    assert fast.sub("", text) == plain.sub("", text)


def test_plain_strings_and_anchors_are_recognised() -> None:
    assert Pattern("^/")._literal == (True, "/", False)
    assert Pattern(r"@example\.com$")._literal == (False, "@example.com", True)
    assert Pattern("(?i)^/")._literal == (True, "/", False)  # '/' has no other case
    assert Pattern("(?i)^a")._literal is None  # a class of a and A
    assert Pattern("^a|^b").anchored and not Pattern("^a|b").anchored
    assert not Pattern("(?:^a)*").anchored and Pattern("^(?:a|b)c").anchored
    assert Pattern("\ufffd")._literal is None  # a lone surrogate of a value reads as U+FFFD in RE2
    assert Pattern("a*")._literal is None and Pattern("")._literal is None


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("^/", "/team-1", "team-1"),
        ("^/", "team/1", "team/1"),
        ("/", "/a/b/", "ab"),
        ("aa", "aaaaa", "a"),
        ("aa$", "aaa", "a"),
        ("^aa$", "aa", ""),
        ("^a*", "aab", "b"),
        ("^", "ab", "ab"),
        ("a*", "bab", "bb"),
        ("[^a-z0-9]+", "pat.teacher--x", "patteacherx"),
    ],
)
def test_replace_matches_re_where_first_and_longest_agree(source: str, text: str, expected: str) -> None:
    ours = Pattern(source, allow_lazy=False).sub("", text)
    assert ours == expected == re.sub(source.replace("$", r"\Z"), "", text)


def test_values_too_long_are_refused_on_every_path() -> None:
    long = "/" + "a" * _patterns.MAX_INPUT_LENGTH
    for source in ("^/", "[^a-z]+", "é+"):
        pattern = Pattern(source)
        with pytest.raises(ValueError, match="too long"):
            pattern.search(long)
        with pytest.raises(ValueError, match="too long"):
            pattern.sub("-", long)


def test_without_the_program_internals_the_public_search_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # A google-re2 release that renames its private Match: the same answers, the slower way.
    monkeypatch.setattr(_patterns, "_raw_match", lambda compiled: None)
    pattern = Pattern("[^a-z0-9]+", allow_lazy=False)
    assert pattern._longest_raw is None and pattern._search_raw is None
    assert pattern.sub("-", "pat.teacher x") == "pat-teacher-x"
    assert pattern.search("a.b") and not pattern.search("ab")
