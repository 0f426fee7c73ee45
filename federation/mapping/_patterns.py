"""Regular expressions for mapping rules, run by RE2 (``google-re2``) in linear time.

Owns: the portable pattern language of ``matches:`` and of the ``replace`` transform
(a subset of Python's ``re`` syntax; anything else is refused at load time with the
message the mapping gave before), its translation to an RE2 program with Python's
meaning, and the input-length bound. RE2 never backtracks, so a match costs time linear
in the value whatever the pattern; Python's ``re`` takes tens of seconds on
``.*.*.*=`` against a 1 KiB claim value, which a token's author controls.

The language: literals and escaped punctuation; ``.``; classes ``[...]`` with ranges and
negation; ``\\d \\w \\s`` and their negations (Unicode, as in Python); ``\\n \\t \\r \\f \\v``;
``^``/``\\A`` (start of the value) and ``$``/``\\Z``/``\\z`` (end of the value: never
before a trailing newline); groups ``(...)``, ``(?:...)``, ``(?P<name>...)`` (none
captures); ``|``; ``* + ? {m} {m,} {m,n} {,n}`` (at most :data:`MAX_REPEAT`, and nested
counts multiplying to at most :data:`MAX_NESTED_REPEAT`), lazy forms
accepted by ``matches`` (where only yes or no counts); flags ``(?i)`` and ``(?s)`` at the
start. Refused: backreferences, lookaround, atomic groups, possessive quantifiers, ``\\b``,
scoped flags, other escapes (so RE2-only syntax such as ``\\C`` or ``\\pN`` too), and under
``(?i)`` an upper-case letter outside the BMP (``re`` itself does not match one reliably).

Python's meaning is kept where RE2's differs: RE2's ``\\d \\w \\s`` are ASCII and its
``(?i)`` uses Unicode simple case folding, while ``re`` folds with simple lower-case forms
plus its table of extra equivalences. So classes, category escapes and ``(?i)`` literals
are compiled to explicit code-point sets, computed once per pattern with Python's own
``re`` over every code point (``re`` is used to *compile* sets, never to match values):
``(?i)i`` matches U+0130 and U+0131, ``(?i)s`` U+017F, ``(?i)k`` the Kelvin sign.

Semantics: ``search`` answers whether the pattern matches anywhere in the value;
``sub`` replaces the leftmost-longest non-overlapping matches with a literal string.
Values longer than :data:`MAX_INPUT_LENGTH` are not searched (the caller reports them).
A lone surrogate in a value is read as U+FFFD (RE2 reads only valid UTF-8).

Must not: know what a claim or a mapping is.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, cast

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

__all__ = [
    "MAX_INPUT_LENGTH",
    "MAX_NESTED_REPEAT",
    "MAX_PATTERN_LENGTH",
    "MAX_PROGRAM_MEMORY",
    "MAX_REPEAT",
    "Pattern",
    "RegexError",
    "TooCostly",
    "compile_pattern",
    "set_searcher",
]

#: Longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 512
#: Longest value a pattern is run on, in characters (claim values come from tokens).
MAX_INPUT_LENGTH = 1024
#: Largest count in a ``{m,n}`` quantifier.
MAX_REPEAT = 100
#: Largest product of the counts of nested quantifiers (``(a{10}){20}`` is 200): RE2's own
#: limit, checked here so that the refusal has our wording and RE2 logs nothing.
MAX_NESTED_REPEAT = 1000
#: RE2's memory budget per compiled pattern (program and DFA cache), in bytes: a pattern
#: whose program does not fit is refused at load time.
MAX_PROGRAM_MEMORY = 8 << 20


class RegexError(ValueError):
    """The pattern is not in the supported language (the message says why)."""


class TooCostly(Exception):
    """RE2 could not run the pattern on this value within its memory budget."""


_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_CATEGORIES = "dDwWsS"
_NEVER = r"[^\x{0}-\x{10ffff}]"


# -- Python's character sets -------------------------------------------------------------


@lru_cache(maxsize=1)
def _all_chars() -> str:
    """Every code point but the surrogates, in order (the universe sets are drawn from)."""
    return "".join(chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000)


def _fold(c: str) -> str:
    """sre's lower case of ``c`` (``_sre.unicode_tolower``)."""
    return c.lower()[0]


def _compute_extra_cases() -> dict[str, tuple[str, ...]]:
    """The extra equivalences, computed as CPython generates ``re._casefix``.

    Characters with the same upper case whose lower cases differ are equal under (?i).
    """
    by_upper: dict[str, set[str]] = {}
    for i in range(0x110000):
        c = chr(i)
        by_upper.setdefault(c.upper(), set()).add(c)
    table: dict[str, tuple[str, ...]] = {}
    for group in by_upper.values():
        lowered = sorted({c.lower() for c in group if len(c.lower()) == 1})
        if len(lowered) > 1:
            for low in lowered:
                table[low] = tuple(other for other in lowered if other != low)
    return table


@lru_cache(maxsize=1)
def _extra_cases() -> dict[str, tuple[str, ...]]:
    """The table of extra case equivalences the running Python's ``re`` uses."""
    # Read from the standard library so that (?i) agrees with this Python's re even where
    # its table differs between versions (3.10 ships a shorter, hand-written one).
    for module, name in (("re._casefix", "_EXTRA_CASES"), ("sre_compile", "_ignorecase_fixes")):
        try:
            raw = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        return {chr(k): tuple(chr(v) for v in vs) for k, vs in raw.items()}
    return _compute_extra_cases()


def _canon(c: str) -> str:
    """One representative of the characters ``re`` takes as equal to ``c`` under (?i)."""
    low = _fold(c)
    return min((low, *_extra_cases().get(low, ())))


@lru_cache(maxsize=1)
def _case_classes() -> dict[str, str]:
    """Representative -> every character ``re`` matches with it under (?i) (cased ones)."""
    members: dict[str, list[str]] = {}
    for c in _all_chars():
        key = _canon(c)
        if key != c or c.upper() != c:
            members.setdefault(key, []).append(c)
    return {key: "".join(chars) for key, chars in members.items() if len(chars) > 1}


def _render(chars: str) -> str:
    """An RE2 class for exactly ``chars`` (sorted code points), as ranges."""
    if not chars:
        return _NEVER
    parts: list[str] = []
    points = [ord(c) for c in chars]
    start = prev = points[0]
    for p in [*points[1:], -1]:
        if p == prev + 1:
            prev = p
            continue
        parts.append(f"\\x{{{start:x}}}" if start == prev else f"\\x{{{start:x}}}-\\x{{{prev:x}}}")
        start = prev = p
    return "[" + "".join(parts) + "]"


@lru_cache(maxsize=512)
def _python_set(source: str) -> str:
    """The RE2 class of the code points Python's ``re`` matches with ``source`` (one char)."""
    with warnings.catch_warnings():
        # re warns of "possible nested sets" ([[:alpha:]] is a plain class to both engines): the
        # mapping's own syntax check already decided, and under -W error a warning would escape.
        warnings.simplefilter("ignore", FutureWarning)
        return _render("".join(re.findall(source, _all_chars())))


def _literal(ch: str, icase: bool) -> str:
    if icase:
        group = _case_classes().get(_canon(ch))
        if group is not None and ch in group:
            return _render(group)
    return f"\\x{{{ord(ch):x}}}"


# -- the syntax check and translation ----------------------------------------------------


class _Parser:
    """Checks a pattern against the portable language and writes its RE2 equivalent."""

    def __init__(self, pattern: str, *, allow_lazy: bool) -> None:
        self.p = pattern
        self.i = 0
        self.icase = False
        self.dotall = False
        self.allow_lazy = allow_lazy
        self.depth = 0
        self.anchored = False
        #: The product of the quantifier counts nested in what was parsed last (see
        #: MAX_NESTED_REPEAT): set by every atom, quantifier, sequence and alternation.
        self.weight = 1

    def error(self, message: str) -> RegexError:
        return RegexError(f"{message} (at position {self.i})")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def parse(self) -> str:
        self._flags()
        branches = [self._seq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self._seq())
        if self.i < len(self.p):  # only an unbalanced ')' stops the top level early
            raise self.error("unbalanced parenthesis")
        # A branch written "^..." starts with the \A atom (never quantified: refused above).
        self.anchored = all(branch.startswith("\\A") for branch in branches)
        return "|".join(branches)

    def _flags(self) -> None:
        while self.p.startswith("(?", self.i):
            j = self.i + 2
            while j < len(self.p) and self.p[j] in "is":
                j += 1
            if j == self.i + 2 or j >= len(self.p) or self.p[j] != ")":
                return
            for flag in self.p[self.i + 2 : j]:
                if flag == "i":
                    self.icase = True
                else:
                    self.dotall = True
            self.i = j + 1

    def _alt(self) -> str:
        branches = [self._seq()]
        weight = self.weight
        while self.peek() == "|":
            self.i += 1
            branches.append(self._seq())
            weight = max(weight, self.weight)
        self.weight = weight
        return "|".join(branches)

    def _seq(self) -> str:
        items: list[str] = []
        weight = 1
        while True:
            ch = self.peek()
            if ch is None or ch in "|)":
                break
            items.append(self._quantified(*self._atom()))
            weight = max(weight, self.weight)
        self.weight = weight
        return "".join(items)

    def _quantified(self, atom: str, repeatable: bool) -> str:
        ch = self.peek()
        bounds: tuple[int, int | None] | None = None
        if ch == "*":
            bounds = (0, None)
            self.i += 1
        elif ch == "+":
            bounds = (1, None)
            self.i += 1
        elif ch == "?":
            bounds = (0, 1)
            self.i += 1
        elif ch == "{":
            bounds = self._braces()
        if bounds is None:
            return atom
        if not repeatable:
            raise self.error("nothing to repeat")
        lazy = ""
        nxt = self.peek()
        if nxt == "?":
            if not self.allow_lazy:
                raise self.error(
                    "lazy quantifiers are not supported here: replace uses leftmost-longest matches"
                )
            self.i += 1
            lazy = "?"
        elif nxt == "+":
            raise self.error("possessive quantifiers are not supported")
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self._looks_like_braces()):
            raise self.error("multiple repeat")
        low, high = bounds
        # As RE2 counts: the upper bound, or the lower one when there is none; 0 adds nothing.
        factor = high if high is not None else low
        if factor > 0:
            self.weight *= factor
            if self.weight > MAX_NESTED_REPEAT:
                raise self.error(
                    f"pattern too large: nested repeat counts multiply to more than "
                    f"{MAX_NESTED_REPEAT} (each count repeats everything inside it)"
                )
        count = f"{{{low},}}" if high is None else f"{{{low},{high}}}"
        return f"(?:{atom}){count}{lazy}"

    def _looks_like_braces(self) -> bool:
        saved = self.i
        try:
            return self._braces() is not None
        finally:
            self.i = saved

    def _braces(self) -> tuple[int, int | None] | None:
        """``{m}``, ``{m,}``, ``{m,n}``, ``{,n}``; None (a literal '{') otherwise, as in Python."""
        j = self.p.find("}", self.i)
        if j < 0:
            return None
        body = self.p[self.i + 1 : j]
        low_s, comma, high_s = body.partition(",")
        if not (low_s.isascii() and high_s.isascii()):
            return None
        if not (low_s.isdigit() or (comma and not low_s)) or (high_s and not high_s.isdigit()):
            return None
        if not low_s and not high_s:
            return None
        low = int(low_s) if low_s else 0
        high: int | None = int(high_s) if high_s else (None if comma else low)
        if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
            raise self.error(f"repeat counts above {MAX_REPEAT} are not supported")
        if high is not None and high < low:
            raise self.error("min repeat greater than max repeat")
        self.i = j + 1
        return low, high

    def _atom(self) -> tuple[str, bool]:
        """The RE2 text of the next atom, and whether a quantifier may follow it."""
        ch = self.p[self.i]
        self.weight = 1  # a group sets its contents' weight
        if ch == "(":
            return self._group()
        if ch == "[":
            return self._class(), True
        if ch == ".":
            self.i += 1
            return ("(?s:.)" if self.dotall else "[^\\n]"), True
        if ch == "^":
            self.i += 1
            return "\\A", False
        if ch == "$":
            self.i += 1
            return "\\z", False
        if ch == "\\":
            return self._escape()
        if ch in "*+?":
            raise self.error("nothing to repeat")
        if ch == "{" and self._looks_like_braces():
            raise self.error("nothing to repeat")
        self.i += 1
        return _literal(self._checked(ch), self.icase), True

    def _checked(self, ch: str) -> str:
        """``ch``, once it is known that re matches it as written here."""
        if self.icase and ch > "\uffff" and _fold(ch) != ch:
            # sre compares a class member outside the BMP with the lowered input as written,
            # so in a class or an alternation it never matches this letter in either case.
            raise self.error(
                f"(?i) with U+{ord(ch):04X}, an upper-case letter outside the BMP, which "
                f"Python's re does not always match case-insensitively: write its lower-case "
                f"form U+{ord(_fold(ch)):04X}"
            )
        return ch

    def _group(self) -> tuple[str, bool]:
        start = self.i
        self.i += 1
        if self.p.startswith("?", self.i):
            rest = self.p[self.i + 1 : self.i + 4]
            if rest.startswith(":"):
                self.i += 2
            elif rest.startswith("P<"):
                end = self.p.find(">", self.i)
                name = self.p[self.i + 3 : end] if end > 0 else ""
                if end < 0 or not name.isidentifier():
                    raise self.error("bad group name")
                self.i = end + 1
            elif rest.startswith("P="):
                raise self.error("backreferences are not supported")
            elif rest[:1] in ("=", "!") or rest[:2] in ("<=", "<!"):
                raise self.error("lookaround assertions are not supported (they need backtracking)")
            elif rest.startswith(">"):
                raise self.error("atomic groups are not supported")
            elif rest.startswith("#"):
                raise self.error("comments are not supported")
            elif rest[:1] in ("i", "s", "a", "m", "x", "u", "L", "-"):
                raise self.error("flags are supported only as (?i) or (?s) at the start of the pattern")
            else:
                raise self.error("unsupported group syntax")
        self.depth += 1
        if self.depth > 50:
            raise self.error("groups nested too deeply")
        inner = self._alt()  # sets self.weight: the group's
        self.depth -= 1
        if self.peek() != ")":
            self.i = start
            raise self.error("missing ), unterminated subpattern")
        self.i += 1
        return f"(?:{inner})", True

    def _escape(self) -> tuple[str, bool]:
        if self.i + 1 >= len(self.p):
            raise self.error("bad escape (end of pattern)")
        ch = self.p[self.i + 1]
        if ch in _CATEGORIES:
            self.i += 2
            positive = _python_set("\\" + ch.lower())
            return (positive if ch.islower() else "[^" + positive[1:]), True
        if ch == "A":
            self.i += 2
            return "\\A", False
        if ch in "Zz":
            self.i += 2
            return "\\z", False
        return _literal(self._checked(self._escaped_char()), self.icase), True

    def _escaped_char(self) -> str:
        """The literal character of the escape at ``self.i`` (outside or inside a class)."""
        ch = self.p[self.i + 1]
        if ch in _SIMPLE_ESCAPES:
            self.i += 2
            return _SIMPLE_ESCAPES[ch]
        if ch.isdigit():
            raise self.error("backreferences and octal escapes are not supported")
        if ch in "bB":
            raise self.error(r"word boundaries (\b, \B) are not supported")
        if ch.isascii() and ch.isalnum():
            raise self.error(f"bad escape \\{ch}")
        self.i += 2
        return ch

    def _class(self) -> str:
        """Check ``[...]``; its members are the ones Python's ``re`` gives the same text."""
        start = self.i
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        body_start = self.i
        first = True
        while True:
            ch = self.peek()
            if ch is None:
                self.i = start
                raise self.error("unterminated character set")
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if ch == "\\" and self.i + 1 < len(self.p) and self.p[self.i + 1] in _CATEGORIES:
                self.i += 2
                if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                    self.i -= 2  # re refuses a category as a range's start ([\d-z]), as its end
                    raise self.error("bad character range")
                continue
            lo = self._class_char()
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                if self.peek() == "\\" and self.i + 1 < len(self.p) and self.p[self.i + 1] in _CATEGORIES:
                    raise self.error("bad character range")
                hi = self._class_char()
                if hi < lo:
                    raise self.error("bad character range")
            else:
                self._checked(lo)
        body = self.p[body_start : self.i - 1]
        # The positive set, then negated by RE2: sre negates the (?i) test the same way.
        try:
            positive = _python_set(("(?i)" if self.icase else "") + "[" + body + "]")
        except re.error as exc:  # the checks above should leave re nothing to refuse
            self.i = start
            raise self.error(f"invalid character set: {exc.msg}") from None
        if not negated:
            return positive
        return "(?s:.)" if positive == _NEVER else "[^" + positive[1:]

    def _class_char(self) -> str:
        ch = self.p[self.i]
        if ch != "\\":
            self.i += 1
            return ch
        if self.i + 1 >= len(self.p):
            raise self.error("bad escape (end of pattern)")
        if self.p[self.i + 1] == "b":  # inside a class, as in Python: backspace
            self.i += 2
            return "\b"
        return self._escaped_char()


_SURROGATES = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (JSON allows them) as U+FFFD, which RE2 can read.

    One character for one, so match positions stay those of ``text``.
    """
    if text.isascii():
        return text
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def _re2_message(exc: Exception) -> str:
    """RE2's reason as text (google-re2 gives it as bytes)."""
    reason = exc.args[0] if exc.args else ""
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _options(*, longest: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would write its errors to stderr itself: we raise them
    options.max_mem = MAX_PROGRAM_MEMORY
    options.longest_match = longest
    return options


_UNANCHORED = getattr(getattr(getattr(re2, "_re2", None), "RE2", None), "Anchor", None)
_UNANCHORED = getattr(_UNANCHORED, "UNANCHORED", None)
_NO_MATCH = (-1, -1)


_RawMatch = Callable[[Any, bytes, int, int], list[tuple[int, int]]]


def _raw_match(compiled: object) -> _RawMatch | None:
    """The RE2 program's own ``Match`` (spans in UTF-8 byte offsets), or None.

    google-re2's ``search`` wraps it in a generator that converts between character
    and byte offsets on every call; an ASCII value has equal offsets, so the engine
    calls the program directly there (a private attribute: when a release renames
    it, the public ``search`` is used, with the same answers).
    """
    match = getattr(getattr(compiled, "_regexp", None), "Match", None)
    return cast("_RawMatch", match) if callable(match) and _UNANCHORED is not None else None


# What a pattern is when its RE2 program is a plain string: \A? literal+ \z?
_LITERAL_FORM = re.compile(r"(\\A)?((?:\\x\{[0-9a-f]{1,6}\})+)(\\z)?")
_LITERAL_CHAR = re.compile(r"\\x\{([0-9a-f]{1,6})\}")


def _as_literal(translated: str) -> tuple[bool, str, bool] | None:
    """(anchored at the start, the text, anchored at the end) when ``translated`` is a plain
    string; None otherwise. Only characters that match exactly themselves in RE2 and in
    ``str`` (no surrogate, no U+FFFD, which a lone surrogate of a value is read as)."""
    form = _LITERAL_FORM.fullmatch(translated)
    if form is None:
        return None
    text = "".join(chr(int(h, 16)) for h in _LITERAL_CHAR.findall(form.group(2)))
    if any(0xD800 <= ord(c) < 0xE000 or c == "\ufffd" for c in text):
        return None
    return form.group(1) is not None, text, form.group(3) is not None


class Pattern:
    """A compiled pattern (an RE2 program with Python's meaning). Thread-safe.

    Everything is decided here, once: the RE2 programs, whether the pattern can only
    match at the start of a value (then ``sub`` searches once), and whether it is a
    plain string (then ``str`` methods answer, with RE2's answers: the tests compare).
    """

    def __init__(self, source: str, *, allow_lazy: bool = True) -> None:
        if len(source) > MAX_PATTERN_LENGTH:
            raise RegexError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
        self.source = source
        parser = _Parser(source, allow_lazy=allow_lazy)
        self.translated = parser.parse()
        #: Every top-level branch starts with \A: a match can only start at 0.
        self.anchored = parser.anchored
        try:
            self._search = re2.compile(self.translated, _options(longest=False))
            # replace: leftmost-longest, so that the result does not depend on branch order.
            self._longest = re2.compile(self.translated, _options(longest=True))
        except re2.error as exc:
            raise RegexError(f"pattern too large to compile ({_re2_message(exc)})") from None
        self._search_raw = _raw_match(self._search)
        self._longest_raw = _raw_match(self._longest)
        self._literal = _as_literal(self.translated)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in ``text`` (at most MAX_INPUT_LENGTH chars)."""
        if len(text) > MAX_INPUT_LENGTH:
            raise ValueError("value too long")
        literal = self._literal
        if literal is not None:
            start, lit, end = literal
            if start:
                return text == lit if end else text.startswith(lit)
            return text.endswith(lit) if end else lit in text
        try:
            if self._search_raw is not None and text.isascii():
                data = text.encode("ascii")
                return self._search_raw(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH
            # UTF-8 bytes: the same bytes RE2 matches for a str, without the wrapper's
            # char-offset bookkeeping (a yes/no answer needs no offsets).
            return self._search.search(_encodable(text).encode("utf-8")) is not None
        except re2.error as exc:
            raise TooCostly(_re2_message(exc)) from None

    def sub(self, replacement: str, text: str) -> str:
        """``text`` with each leftmost-longest match replaced by ``replacement`` (literal)."""
        if len(text) > MAX_INPUT_LENGTH:
            raise ValueError("value too long")
        literal = self._literal
        if literal is not None:  # a plain non-empty string: its occurrences, left to right
            start, lit, end = literal
            if start and end:
                return replacement if text == lit else text
            if start:
                return replacement + text[len(lit) :] if text.startswith(lit) else text
            if end:
                return text[: -len(lit)] + replacement if text.endswith(lit) else text
            return text.replace(lit, replacement)
        try:
            if self._longest_raw is not None and text.isascii():
                return self._sub_ascii(replacement, text)
            return self._sub(replacement, text)
        except re2.error as exc:
            raise TooCostly(_re2_message(exc)) from None

    def searcher(self) -> Callable[[str], bool]:
        """``self.search`` as a tighter closure for an ASCII value (the common case)."""
        match = self._search_raw
        if match is None or self._literal is not None:
            return self.search
        search = self.search

        def search_ascii(text: str) -> bool:
            if not text.isascii() or len(text) > MAX_INPUT_LENGTH:
                return search(text)  # the general path, and its refusal of a value too long
            data = text.encode("ascii")
            try:
                return match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH
            except re2.error as exc:
                raise TooCostly(_re2_message(exc)) from None

        return search_ascii

    def _cut_prefix(self) -> str | None:
        """The text of a plain string anchored at the start only (``^/``), else None."""
        literal = self._literal
        if literal is None or not literal[0] or literal[2]:
            return None
        return literal[1]

    def replacer(
        self, replacement: str, too_long: Callable[[], Exception] | None = None
    ) -> Callable[[str], str] | None:
        """For a plain string anchored at the start (``^/``: a prefix to cut), one closure
        doing ``self.sub(replacement, text)``, raising ``too_long()`` where ``sub`` refuses a
        value too long; None for any other pattern (use :meth:`sub`)."""
        prefix = self._cut_prefix()
        if prefix is None:
            return None
        cut = len(prefix)

        def replace_prefix(text: str) -> str:
            if len(text) > MAX_INPUT_LENGTH:
                raise too_long() if too_long is not None else ValueError("value too long")
            return replacement + text[cut:] if text.startswith(prefix) else text

        return replace_prefix

    def list_replacer(
        self, replacement: str, too_long: Callable[[], Exception]
    ) -> Callable[[Sequence[str]], list[str]] | None:
        """:meth:`replacer` over a whole sequence of strings in one pass (None where
        ``replacer`` is None): the values of ``[replace_prefix(t) for t in texts]``, and
        ``too_long()`` raised where any of them would raise it."""
        prefix = self._cut_prefix()
        if prefix is None:
            return None
        cut = len(prefix)

        def replace_prefixes(texts: Sequence[str]) -> list[str]:
            # One join bounds every length at once; only a long total looks at each text.
            if len("".join(texts)) > MAX_INPUT_LENGTH and max(map(len, texts)) > MAX_INPUT_LENGTH:
                raise too_long()
            if not replacement:  # the usual case: cut a prefix off
                return [text.removeprefix(prefix) for text in texts]
            return [replacement + text[cut:] if text.startswith(prefix) else text for text in texts]

        return replace_prefixes

    def _sub_ascii(self, replacement: str, text: str) -> str:
        """``_sub`` for an ASCII value: byte offsets are character offsets."""
        match = self._longest_raw
        assert match is not None
        data = text.encode("ascii")
        n = len(data)
        start, end = match(_UNANCHORED, data, 0, n)[0]
        if start < 0:
            return text
        if self.anchored:  # no match can start after 0: the first is the only one
            return text[:start] + replacement + text[end:]
        out: list[str] = []
        copied = 0  # text[:copied] is already in out
        while True:
            out.append(text[copied:start])
            out.append(replacement)
            if end == start:  # an empty match: keep the next character, move past it
                out.append(text[start : start + 1])
                copied = pos = start + 1
            else:
                copied = pos = end
            if pos > n:
                break
            start, end = match(_UNANCHORED, data, pos, n)[0]
            if start < 0:
                break
        out.append(text[copied:])
        return "".join(out)

    def _sub(self, replacement: str, text: str) -> str:
        """Replace through google-re2's public ``search`` (character offsets)."""
        out: list[str] = []
        subject = _encodable(text)
        n = len(text)
        copied = pos = 0  # text[:copied] is already in out
        while pos <= n:
            found = self._longest.search(subject, pos)
            if found is None:
                break
            start, end = found.span()
            out.append(text[copied:start])
            out.append(replacement)
            if end == start:  # an empty match: keep the next character, move past it
                out.append(text[start : start + 1])
                copied = pos = start + 1
            else:
                copied = pos = end
        out.append(text[copied:])
        return "".join(out)


@lru_cache(maxsize=256)
def compile_pattern(source: str, *, allow_lazy: bool = True) -> Pattern:
    """Compile ``source`` (cached); raise :class:`RegexError` with the reason."""
    return Pattern(source, allow_lazy=allow_lazy)


#: What a set searcher gives for a value: the positions of the patterns that match it.
SetSearch = Callable[[str], Sequence[int] | None]


def set_searcher(patterns: Sequence[Pattern], *, max_mem: int = MAX_PROGRAM_MEMORY) -> SetSearch | None:
    """``patterns`` searched together in one pass over an ASCII value (``RE2::Set``).

    The closure gives the positions of the patterns that match the value, each as its
    :meth:`Pattern.search` answers, and always ``len(patterns)`` as well (see below), in no
    particular order; or None where the set does not answer and each pattern must search on
    its own: a value that is not ASCII or is longer than :data:`MAX_INPUT_LENGTH`, and a run
    that exhausted the DFA's memory budget. A set has no slower engine to fall back on; it
    then reports no match at all, so an empty pattern, which matches every value, is added
    last: a run that does not report it did not finish. None when the set cannot be built
    (over the memory budget).
    """
    options = _options(longest=False)
    options.max_mem = max_mem
    try:
        compiled = re2.Set.SearchSet(options)
        for pattern in patterns:
            compiled.Add(pattern.translated)
        compiled.Add("")  # the sentinel: matches everything
        compiled.Compile()
    except re2.error:
        return None
    # The program's own Match (a list, empty when nothing matched or the run failed) when the
    # wrapper exposes it, else the public one (None then): with the sentinel, both mean failure.
    match = getattr(getattr(compiled, "_set", None), "Match", None)
    if not callable(match):
        match = compiled.Match

    def search(text: str) -> Sequence[int] | None:
        if len(text) > MAX_INPUT_LENGTH or not text.isascii():
            return None
        return match(text.encode("ascii")) or None

    return search
