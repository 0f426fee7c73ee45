"""Regular expressions for mapping rules, in time linear in the input.

Owns: parsing the pattern language of ``matches:`` and of the ``replace``
transform (a subset of Python's ``re`` syntax, refused with a clear message
when a pattern uses anything else), compiling it to a Thompson NFA, and running
it as a lazily built DFA: every input character costs one dictionary lookup
once the DFA state is cached, and at most one NFA closure when it is not, so a
match is O(len(input) x len(pattern)) whatever the pattern. The DFA's memory is
bounded per pattern whatever the values hold: transitions are cached by
character class (the NFA states a character moves to), the per-character fast
path is capped, and a full cache starts over. Python's ``re``
backtracks: ``.*.*.*=`` takes tens of seconds on a 1 KiB claim value, which a
token's author controls. Nothing here backtracks.

The language: literals and escaped punctuation; ``.``; classes ``[...]`` with
ranges and negation; ``\\d \\w \\s`` and their negations (Unicode, as in
Python); ``\\n \\t \\r \\f \\v``; ``^``/``\\A`` (start of the value) and
``$``/``\\Z``/``\\z`` (end of the value: never before a trailing newline);
groups ``(...)``, ``(?:...)``, ``(?P<name>...)`` (none captures); ``|``;
``* + ? {m} {m,} {m,n} {,n}`` (at most :data:`MAX_REPEAT`), lazy forms
accepted by ``matches`` (where only yes or no counts); flags ``(?i)`` and
``(?s)`` at the start. Refused: backreferences, lookaround, atomic groups,
possessive quantifiers, ``\\b``, scoped flags, other escapes, and under ``(?i)`` an
upper-case letter outside the BMP (``re`` itself does not match one reliably).

``(?i)`` folds case exactly as the running Python's ``re`` does (simple lower-case
forms plus ``re``'s table of extra equivalences, and sre's rules for classes), so a
rule tried out with ``re`` holds here: ``(?i)i`` matches U+0130 and U+0131 (dotted and
dotless I), ``(?i)s`` matches U+017F (long s), ``(?i)k`` the Kelvin sign.

Semantics: ``search`` answers whether the pattern matches anywhere in the value
(anchor with ``^`` and ``$``); ``sub`` replaces the leftmost-longest
non-overlapping matches with a literal string. Values longer than
:data:`MAX_INPUT_LENGTH` are not searched (the caller reports them).

Must not: import ``re`` for matching, or know what a claim or a mapping is.
"""

from __future__ import annotations

import importlib
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "MAX_INPUT_LENGTH",
    "MAX_PATTERN_LENGTH",
    "MAX_REPEAT",
    "Pattern",
    "RegexError",
    "TooCostly",
    "compile_pattern",
]

#: Longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 512
#: Longest value a pattern is run on, in characters (claim values come from tokens).
MAX_INPUT_LENGTH = 1024
#: Largest count in a ``{m,n}`` quantifier.
MAX_REPEAT = 100
#: Largest compiled program (NFA states), after counted repetitions are expanded.
MAX_STATES = 2000
#: DFA states cached per pattern before the cache starts over.
MAX_DFA_STATES = 512
#: NFA states held by the cached DFA states and their class-keyed transitions, per pattern,
#: before the cache starts over (bounds the memory of large patterns).
MAX_DFA_WEIGHT = 50_000
#: Transitions cached by character per pattern; past this the character table starts over
#: (the class-keyed table behind it is kept), whatever characters the values carry.
MAX_CHAR_TRANSITIONS = 4096
#: Work budget of one ``sub`` call, in DFA steps per input character.
SUB_STEPS_PER_CHAR = 32


class RegexError(ValueError):
    """The pattern is not in the supported language (the message says why)."""


class TooCostly(Exception):
    """``sub`` ran out of its work budget on this value."""


CharTest = Callable[[str], bool]


# -- character tests ---------------------------------------------------------------------


def _is_digit(c: str) -> bool:
    return c.isdecimal()


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _is_space(c: str) -> bool:
    return c.isspace()


_CATEGORIES: dict[str, tuple[CharTest, bool]] = {
    "d": (_is_digit, False),
    "D": (_is_digit, True),
    "w": (_is_word, False),
    "W": (_is_word, True),
    "s": (_is_space, False),
    "S": (_is_space, True),
}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}


@dataclass(frozen=True)
class _Class:
    """A character class: single characters, ranges and categories, possibly negated."""

    literals: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    categories: tuple[tuple[CharTest, bool], ...]
    negated: bool

    def contains(self, c: str) -> bool:
        if c in self.literals:
            return True
        for lo, hi in self.ranges:
            if lo <= c <= hi:
                return True
        return any(test(c) != negate for test, negate in self.categories)


# -- case-insensitive matching, exactly as Python's re ------------------------------------
#
# sre compares *simple* case mappings: CPython's one-character lower/upper of a code point,
# which is the first character of ``str.lower()``/``str.upper()`` (İ lowers to "i"). A
# cased literal matches every character whose simple lower case is its own, or one of the
# extra equivalences re ships (dotless i ~ i, long s ~ s, final sigma ~ sigma, ...:
# characters sharing an upper case).
# A class under (?i) is tested on the lowered character; its BMP members are lowered when
# compiled, its members outside the BMP are matched as sre's RANGE_UNI_IGNORE does.


def _fold(c: str) -> str:
    """sre's lower case of ``c`` (``_sre.unicode_tolower``)."""
    return c.lower()[0]


def _upper(c: str) -> str:
    """sre's upper case of ``c`` (``sre_upper_unicode``)."""
    return c.upper()[0]


def _cased(c: str) -> bool:
    """sre's ``unicode_iscased``: the character has another case."""
    return _fold(c) != c or _upper(c) != c


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


def _fold_set(c: str) -> frozenset[str]:
    """The lower-case forms a cased ``c`` matches under (?i)."""
    low = _fold(c)
    return frozenset((low, *_extra_cases().get(low, ())))


@lru_cache(maxsize=1)
def _cased_bmp() -> tuple[str, ...]:
    """Every cased character of the BMP, in order (for lowering ranges)."""
    return tuple(c for c in map(chr, range(0x10000)) if _cased(c))


def _literal_test(ch: str, icase: bool) -> CharTest:
    if not icase or not _cased(ch):
        return ch.__eq__
    folds = _fold_set(ch)
    if len(folds) == 1:
        (low,) = folds
        return lambda c: c.lower()[0] == low
    return lambda c: c.lower()[0] in folds


def _class_test(cls: _Class, icase: bool) -> CharTest:
    contains = cls.contains
    negated = cls.negated
    wide = [r for r in cls.ranges if r[1] > "\uffff"]
    if not icase or not (
        any(map(_cased, cls.literals))
        or any(c > "\uffff" for c in cls.literals)
        or wide
        or any(_cased_in(lo, hi) for lo, hi in cls.ranges)
    ):
        # Nothing cased in the class: sre tests the character as it is.
        def plain(c: str) -> bool:
            return contains(c) != negated

        return plain

    # sre's charmap: every BMP member lowered, with its extra equivalences. Lowering is
    # idempotent, so a lowered character inside a range is a member as it is; only the
    # lower forms of the range's cased characters need listing.
    folded: set[str] = set()
    for c in cls.literals:
        folded |= _fold_set(c) if _cased(c) else {c}
    for lo, hi in cls.ranges:
        for c in _cased_in(lo, hi):
            folded |= _fold_set(c)
    members = frozenset(folded)
    ranges = tuple((lo, min(hi, "\uffff")) for lo, hi in cls.ranges if lo <= "\uffff")
    categories = cls.categories

    def test(c: str) -> bool:
        f = c.lower()[0]
        if f in members:
            return not negated
        for lo, hi in ranges:
            if lo <= f <= hi:
                return not negated
        for lo, hi in wide:  # sre's RANGE_UNI_IGNORE: a range reaching past the BMP, whole
            if lo <= f <= hi or lo <= _upper(f) <= hi:
                return not negated
        for t, negate in categories:  # sre tests categories on the lowered character too
            if t(f) != negate:
                return not negated
        return negated

    return test


def _cased_in(lo: str, hi: str) -> tuple[str, ...]:
    """The cased BMP characters in ``lo..hi``."""
    cased = _cased_bmp()
    return cased[bisect_left(cased, lo) : bisect_right(cased, hi)]


# -- parsing -----------------------------------------------------------------------------

# AST nodes: ("char", test) ("cat", [nodes]) ("alt", [nodes]) ("rep", node, min, max|None)
# ("bol",) ("eol",) ("empty",)
Node = tuple[object, ...]


class _Parser:
    def __init__(self, pattern: str, *, allow_lazy: bool) -> None:
        self.p = pattern
        self.i = 0
        self.icase = False
        self.dotall = False
        self.allow_lazy = allow_lazy
        self.depth = 0

    def error(self, message: str) -> RegexError:
        return RegexError(f"{message} (at position {self.i})")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def parse(self) -> Node:
        self._flags()
        node = self._alt()
        if self.i < len(self.p):  # only an unbalanced ')' stops the top level early
            raise self.error("unbalanced parenthesis")
        return node

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

    def _alt(self) -> Node:
        branches = [self._seq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self._seq())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _seq(self) -> Node:
        items: list[Node] = []
        while True:
            ch = self.peek()
            if ch is None or ch in "|)":
                break
            atom = self._atom()
            items.append(self._quantified(atom))
        if not items:
            return ("empty",)
        return items[0] if len(items) == 1 else ("cat", items)

    def _quantified(self, atom: Node) -> Node:
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
        if atom[0] in ("bol", "eol", "empty"):
            raise self.error("nothing to repeat")
        nxt = self.peek()
        if nxt == "?":
            if not self.allow_lazy:
                raise self.error(
                    "lazy quantifiers are not supported here: replace uses leftmost-longest matches"
                )
            self.i += 1  # a lazy quantifier matches the same values
        elif nxt == "+":
            raise self.error("possessive quantifiers are not supported")
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self._looks_like_braces()):
            raise self.error("multiple repeat")
        low, high = bounds
        return ("rep", atom, low, high)

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

    def _atom(self) -> Node:
        ch = self.p[self.i]
        if ch == "(":
            return self._group()
        if ch == "[":
            return ("char", _class_test(self._class(), self.icase))
        if ch == ".":
            self.i += 1
            return ("char", (lambda c: True) if self.dotall else (lambda c: c != "\n"))
        if ch == "^":
            self.i += 1
            return ("bol",)
        if ch == "$":
            self.i += 1
            return ("eol",)
        if ch == "\\":
            return self._escape()
        if ch in "*+?":
            raise self.error("nothing to repeat")
        if ch == "{" and self._looks_like_braces():
            raise self.error("nothing to repeat")
        self.i += 1
        return ("char", _literal_test(self._literal(ch), self.icase))

    def _literal(self, ch: str) -> str:
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

    def _group(self) -> Node:
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
        node = self._alt()
        self.depth -= 1
        if self.peek() != ")":
            self.i = start
            raise self.error("missing ), unterminated subpattern")
        self.i += 1
        return node

    def _escape(self) -> Node:
        if self.i + 1 >= len(self.p):
            raise self.error("bad escape (end of pattern)")
        ch = self.p[self.i + 1]
        if ch in _CATEGORIES:
            self.i += 2
            return ("char", _class_test(_Class(frozenset(), (), (_CATEGORIES[ch],), False), False))
        if ch == "A":
            self.i += 2
            return ("bol",)
        if ch in "Zz":
            self.i += 2
            return ("eol",)
        return ("char", _literal_test(self._literal(self._escaped_char()), self.icase))

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

    def _class(self) -> _Class:
        start = self.i
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        literals: set[str] = set()
        ranges: list[tuple[str, str]] = []
        cats: list[tuple[CharTest, bool]] = []
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
                cats.append(_CATEGORIES[self.p[self.i + 1]])
                self.i += 2
                continue
            lo = self._class_char()
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                if self.peek() == "\\" and self.i + 1 < len(self.p) and self.p[self.i + 1] in _CATEGORIES:
                    raise self.error("bad character range")
                hi = self._class_char()
                if hi < lo:
                    raise self.error("bad character range")
                ranges.append((lo, hi))
            else:
                literals.add(self._literal(lo))
        return _Class(frozenset(literals), tuple(ranges), tuple(cats), negated)

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


# -- the program (Thompson NFA) ----------------------------------------------------------


def _never(c: str) -> bool:
    return False


_CHAR, _SPLIT, _BOL, _EOL, _MATCH = range(5)


class _Program:
    """NFA states in parallel lists; state ``start`` is the entry."""

    def __init__(self, ast: Node) -> None:
        self.kind: list[int] = []
        self.test: list[CharTest] = []  # _never for states that consume nothing
        self.out1: list[int] = []
        self.out2: list[int] = []
        match = self._new(_MATCH)
        self.start = self._build(ast, match)

    def _new(self, kind: int, test: CharTest | None = None, out1: int = -1, out2: int = -1) -> int:
        # The match state and the epsilon states never consume: their test is always False.
        if len(self.kind) >= MAX_STATES:
            raise RegexError(
                f"pattern too large (more than {MAX_STATES} states once repetitions are expanded)"
            )
        self.kind.append(kind)
        self.test.append(test or _never)
        self.out1.append(out1)
        self.out2.append(out2)
        return len(self.kind) - 1

    def _build(self, node: Node, nxt: int) -> int:
        tag = node[0]
        if tag == "char":
            test = node[1]
            assert callable(test)
            return self._new(_CHAR, test, nxt)
        if tag == "cat":
            parts = node[1]
            assert isinstance(parts, list)
            for part in reversed(parts):
                nxt = self._build(part, nxt)
            return nxt
        if tag == "alt":
            branches = node[1]
            assert isinstance(branches, list)
            entry = self._build(branches[-1], nxt)
            for branch in reversed(branches[:-1]):
                entry = self._new(_SPLIT, None, self._build(branch, nxt), entry)
            return entry
        if tag == "rep":
            body, low, high = node[1], node[2], node[3]
            assert isinstance(body, tuple) and isinstance(low, int)
            if high is None:
                loop = self._new(_SPLIT, None, -1, nxt)
                self.out1[loop] = self._build(body, loop)
                cur = loop
            else:
                assert isinstance(high, int)
                cur = nxt
                for _ in range(high - low):
                    cur = self._new(_SPLIT, None, self._build(body, cur), nxt)
            for _ in range(low):
                cur = self._build(body, cur)
            return cur
        if tag == "bol":
            return self._new(_BOL, None, nxt)
        if tag == "eol":
            return self._new(_EOL, None, nxt)
        return nxt  # empty

    def closure(self, seeds: list[int], at_start: bool, at_end: bool | None) -> frozenset[int]:
        """The states reachable from ``seeds`` without consuming a character.

        Keeps character states and the match state; ``$`` states are crossed when
        ``at_end`` is True, kept pending when it is None (not yet known), and
        dropped when False. ``^`` states are crossed only ``at_start``.
        """
        kind, out1, out2 = self.kind, self.out1, self.out2
        seen: set[int] = set()
        kept: set[int] = set()
        stack = list(seeds)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            k = kind[s]
            if k == _SPLIT:
                stack.append(out2[s])
                stack.append(out1[s])
            elif k == _BOL:
                if at_start:
                    stack.append(out1[s])
            elif k == _EOL:
                if at_end:
                    stack.append(out1[s])
                elif at_end is None:
                    kept.add(s)
            else:
                kept.add(s)
        return frozenset(kept)


class _Cache:
    """One generation of a DFA's states and transitions (replaced whole when full).

    ``trans`` maps (state, character) to the next state: the fast path, and the only
    table a new code point adds to, so it is capped by :data:`MAX_CHAR_TRANSITIONS`.
    ``by_moves`` maps (state, the NFA states the character moves to) to the next state:
    one entry per character *class* the state distinguishes, however many code points
    fall in it, so a fresh code point costs the state's character tests and no closure.
    """

    __slots__ = ("accept", "by_moves", "end", "ids", "sets", "starts", "trans", "weight")

    def __init__(self) -> None:
        self.starts: dict[bool, int] = {}  # the initial state, at the start of the value or not
        self.ids: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.accept: list[bool] = []
        self.end: dict[int, bool] = {}
        self.trans: dict[tuple[int, str], int] = {}
        self.by_moves: dict[tuple[int, tuple[int, ...]], int] = {}
        self.weight = 0  # NFA states held in sets and by_moves keys

    def full(self) -> bool:
        return len(self.sets) >= MAX_DFA_STATES or self.weight >= MAX_DFA_WEIGHT


class _Dfa:
    """A lazily built DFA over a program: unanchored (search) or anchored (longest match)."""

    def __init__(self, prog: _Program, *, unanchored: bool) -> None:
        self.prog = prog
        self.unanchored = unanchored
        self._lock = threading.Lock()
        self._mid = prog.closure([prog.start], False, None)  # a new attempt, not at the start
        self._cache = _Cache()

    def _intern(self, cache: _Cache, states: frozenset[int]) -> int:
        sid = cache.ids.get(states)
        if sid is not None:
            return sid
        with self._lock:
            sid = cache.ids.get(states)
            if sid is None:
                sid = len(cache.sets)
                cache.sets.append(states)
                cache.accept.append(_MATCH in {self.prog.kind[s] for s in states})
                cache.ids[states] = sid
                cache.weight += len(states) + 1
        return sid

    def initial(self, at_start: bool) -> tuple[_Cache, int]:
        cache = self._cache
        sid = cache.starts.get(at_start)
        if sid is None:
            sid = self._intern(cache, self.prog.closure([self.prog.start], at_start, None))
            cache.starts[at_start] = sid
        return cache, sid

    def step(self, cache: _Cache, sid: int, c: str) -> tuple[_Cache, int]:
        """The state after ``c`` (the cache may be a new generation)."""
        prog = self.prog
        test, out1 = prog.test, prog.out1
        moves = tuple(out1[s] for s in cache.sets[sid] if test[s](c))
        key = (sid, moves)
        nxt = cache.by_moves.get(key)
        if nxt is None:
            states = prog.closure(list(moves), False, None)
            if self.unanchored:
                states = states | self._mid
            if cache.full():  # start a new generation; other threads keep theirs
                fresh = _Cache()
                self._cache = fresh
                return fresh, self._intern(fresh, states)
            nxt = self._intern(cache, states)
            with self._lock:
                cache.by_moves[key] = nxt
                cache.weight += len(moves) + 1
        trans = cache.trans
        if len(trans) >= MAX_CHAR_TRANSITIONS:
            # Only this table grows with the number of distinct code points: start it over,
            # keeping the states and the class-keyed table (readers keep the old dict).
            trans = cache.trans = {}
        trans[(sid, c)] = nxt
        return cache, nxt

    def accepts_at_end(self, cache: _Cache, sid: int, at_start: bool) -> bool:
        if not at_start:
            known = cache.end.get(sid)
            if known is not None:
                return known
        prog = self.prog
        pending = [prog.out1[s] for s in cache.sets[sid] if prog.kind[s] == _EOL]
        result = cache.accept[sid] or _MATCH in {prog.kind[s] for s in prog.closure(pending, at_start, True)}
        if not at_start:
            cache.end[sid] = result
        return result


class Pattern:
    """A compiled pattern. Thread-safe; the DFA is built as inputs are seen."""

    def __init__(self, source: str, *, allow_lazy: bool = True) -> None:
        if len(source) > MAX_PATTERN_LENGTH:
            raise RegexError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
        self.source = source
        self._prog = _Program(_Parser(source, allow_lazy=allow_lazy).parse())
        self._search = _Dfa(self._prog, unanchored=True)
        self._anchored: _Dfa | None = None

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in ``text`` (at most MAX_INPUT_LENGTH chars)."""
        if len(text) > MAX_INPUT_LENGTH:
            raise ValueError("value too long")
        dfa = self._search
        cache, sid = dfa.initial(True)
        if cache.accept[sid]:
            return True
        for c in text:
            nxt = cache.trans.get((sid, c))
            if nxt is None:
                cache, nxt = dfa.step(cache, sid, c)
            sid = nxt
            if cache.accept[sid]:
                return True
            if not cache.sets[sid]:
                return False
        return dfa.accepts_at_end(cache, sid, not text)

    def _longest(self, dfa: _Dfa, text: str, pos: int, budget: list[int]) -> int:
        """End of the longest match starting at ``pos``, or -1."""
        n = len(text)
        cache, sid = dfa.initial(pos == 0)
        best = -1
        i = pos
        while True:
            if cache.accept[sid] or (i == n and dfa.accepts_at_end(cache, sid, pos == 0 and n == 0)):
                best = i
            if i == n or not cache.sets[sid]:
                return best
            budget[0] -= 1
            if budget[0] < 0:
                raise TooCostly
            c = text[i]
            nxt = cache.trans.get((sid, c))
            if nxt is None:
                cache, nxt = dfa.step(cache, sid, c)
            sid = nxt
            i += 1

    def sub(self, replacement: str, text: str) -> str:
        """``text`` with each leftmost-longest match replaced by ``replacement`` (literal).

        Raises :class:`TooCostly` when the work exceeds SUB_STEPS_PER_CHAR per character.
        """
        if len(text) > MAX_INPUT_LENGTH:
            raise ValueError("value too long")
        dfa = self._anchored
        if dfa is None:
            dfa = self._anchored = _Dfa(self._prog, unanchored=False)
        budget = [SUB_STEPS_PER_CHAR * (len(text) + 1)]
        out: list[str] = []
        n = len(text)
        copied = 0  # text[:copied] is already in out
        pos = 0
        cache, later = dfa.initial(False)  # the state a match starting after position 0 begins in
        anchored = not cache.sets[later]  # '^': nothing can start after position 0
        while pos <= n:
            if pos > 0:
                if anchored:
                    break
                if pos < n and not cache.accept[later]:
                    nxt = cache.trans.get((later, text[pos]))
                    if nxt is not None and not cache.sets[nxt]:  # no match can start here
                        pos += 1
                        continue
            end = self._longest(dfa, text, pos, budget)
            if end < 0:
                pos += 1
                continue
            out.append(text[copied:pos])
            out.append(replacement)
            if end == pos:  # an empty match: keep the next character, move past it
                if pos < n:
                    out.append(text[pos])
                copied = pos + 1
                pos += 1
            else:
                copied = pos = end
        out.append(text[copied:])
        return "".join(out)


@lru_cache(maxsize=256)
def compile_pattern(source: str, *, allow_lazy: bool = True) -> Pattern:
    """Compile ``source`` (cached); raise :class:`RegexError` with the reason."""
    return Pattern(source, allow_lazy=allow_lazy)
