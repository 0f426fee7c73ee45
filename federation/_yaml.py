"""YAML loading that remembers where every value came from.

Owns: parsing a YAML document safely (``SafeLoader`` only, duplicate keys and
merge keys refused, aliases converted once, a node budget) into plain Python
data plus a map from each value's path to its 1-based (line, column), and
turning pydantic validation errors into a
:class:`~federation.errors.ConfigError` that names the file, line, column and
field, in our words rather than pydantic's (the document's owner supplies the
"did you mean" of an unknown key). Used by the bridge config and the mapping file.

Must not: know what the documents mean.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._files import FileTooLarge, NotRegularFile, UnusablePath, display_path, printable, read_limited
from .errors import ConfigError

__all__ = [
    "MAX_YAML_BYTES",
    "Located",
    "config_error_from_problems",
    "config_error_from_validation",
    "format_path",
    "load_yaml",
    "read_yaml_file",
]

PathKey = tuple[str | int, ...]

#: A config or mapping file is hand-written: far below this (and the node budget below).
MAX_YAML_BYTES = 4 * 1024 * 1024


class Located:
    """Parsed YAML data with source positions for each path."""

    def __init__(self, data: Any, positions: dict[PathKey, tuple[int, int]], file: str | None) -> None:
        self.data = data
        self.positions = positions
        self.file = file

    def position(self, path: Sequence[str | int]) -> tuple[int, int] | None:
        """The position of the deepest known prefix of ``path``."""
        key = tuple(path)
        while True:
            if key in self.positions:
                return self.positions[key]
            if not key:
                return None
            key = key[:-1]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_MAX_NODES = 100_000  # a config or mapping file is hand-written: far below this
_MERGE_TAG = "tag:yaml.org,2002:merge"  # what the resolver gives a plain '<<' key
# The only tags a collection may carry: what the resolver gives an untagged one (or '!!map',
# '!!seq' written out). The converter builds plain dicts and lists without asking the
# loader's constructors, so any other tag ('!!set', '!!python/...', '!foo') would be
# silently dropped; refused instead, as SafeLoader refuses an unknown tag on a scalar.
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_BOOL_TAG, _INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
# PyYAML resolves plain scalars by YAML 1.1, where YAML 1.2 (and every reader's intuition)
# sees strings or other numbers: 'NO' (Norway) and 'on' are booleans, '017' is octal 15,
# '1_000' is 1000 and '1:30' is 90. A deny rule comparing with 'NO' would compare with
# false and never fire: such a plain value is refused, to be quoted or written plainly.
_YAML12_BOOLS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_YAML11_ONLY_NUMBER = re.compile(r"[_:]|^[-+]?0b|^[-+]?0[0-9]")
_YAML12_ONLY_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")  # a string to PyYAML: '1e5'
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_UNREADABLE = {_INT_TAG: "a number with too many digits", _TIMESTAMP_TAG: "a date that does not exist"}
# PyYAML's problems quote what they stopped at ("found undefined alias 'x'"): the file's
# text, maybe a secret. Kept: a quoted character or two ('\t', ':'), and its '<token>'s.
_QUOTED_INPUT = re.compile(r"'(?!<)[^']{3,}'")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stopped once a document holds more nodes than :class:`_Converter`
    would take: its pure-Python parser needs about a minute for a megabyte-long flow list, and
    would finish one before the converter's own count refused it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "the document has too many nodes", mark)
        return super().compose_node(parent, index)


class _Converter:
    """Node graph to plain data. Aliases share one converted object, so an alias
    bomb ("billion laughs") costs work proportional to the file, not its expansion."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self._done: dict[int, Any] = {}
        self._active: set[int] = set()
        self._budget = _MAX_NODES

    def error(self, node: yaml.Node, message: str, field: str | None = None) -> ConfigError:
        line, col = _mark(node)
        where = f"{self.file}:{line}:{col}: " + (f"{field}: " if field else "")
        return ConfigError(where + message, file=self.file, line=line, column=col, field=field)

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.positions.setdefault(path, _mark(node))
        if id(node) in self._done:
            return self._done[id(node)]
        if id(node) in self._active:
            raise self.error(node, "recursive YAML aliases are not supported")
        self._budget -= 1
        if self._budget < 0:
            raise self.error(node, "document has too many nodes")
        self._active.add(id(node))
        try:
            value = self._convert(node, path)
        finally:
            self._active.discard(id(node))
        self._done[id(node)] = value
        return value

    def _convert(self, node: yaml.Node, path: PathKey) -> Any:
        if isinstance(node, yaml.MappingNode) and node.tag != _MAP_TAG:
            raise self.error(node, f"invalid YAML: the tag {node.tag!r} is not supported on a mapping")
        if isinstance(node, yaml.SequenceNode) and node.tag != _SEQ_TAG:
            raise self.error(node, f"invalid YAML: the tag {node.tag!r} is not supported on a sequence")
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                # PyYAML expands merges before any budget of ours applies, and a chain of
                # merges grows exponentially: refuse them before flatten_mapping sees one.
                if key_node.tag == _MERGE_TAG:
                    raise self.error(key_node, "YAML merge keys ('<<') are not supported: write the keys out")
            self.loader.flatten_mapping(node)  # no merges left: only turns '=' keys into strings
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, (str, int)):
                    raise self.error(key_node, "mapping keys must be strings")
                if key in result:
                    raise self.error(key_node, "duplicate key", _format_path(path + (key,)))
                # The key's own line is the most useful place to point at for this field.
                self.positions[path + (key,)] = _mark(key_node)
                result[key] = self.convert(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and node.style is None:
            self._refuse_yaml11_only(node)
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:  # an int of more digits than Python converts, an impossible date
            kind = _UNREADABLE.get(node.tag, "a value YAML cannot read")
            raise self.error(node, f"{kind}: quote it if it is text") from None

    def _refuse_yaml11_only(self, node: yaml.ScalarNode) -> None:
        text = node.value
        if node.tag == _BOOL_TAG and text not in _YAML12_BOOLS:
            raise self.error(
                node,
                f"the plain value {text!r} reads as a YAML 1.1 boolean: write true or false, or quote it",
            )
        if (node.tag in (_INT_TAG, _FLOAT_TAG) and _YAML11_ONLY_NUMBER.search(text)) or (
            node.tag == _STR_TAG and _YAML12_ONLY_FLOAT.fullmatch(text)
        ):
            raise self.error(
                node,
                f"the plain value {text!r} is read differently by YAML 1.1 and 1.2: "
                "quote it, or write a decimal",
            )


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document; raise :class:`ConfigError` with a position on failure."""
    loader: yaml.SafeLoader | None = None
    refused: ConfigError | None = None
    try:
        loader = _BoundedLoader(text)  # the reader may already refuse the characters
        node = loader.get_single_node()
        converter = _Converter(loader, file)
        data = None if node is None else converter.convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        where = f"{file}:{line}:{col}" if line else file
        problem = _QUOTED_INPUT.sub("'…'", str(exc.problem or exc.context))
        refused = ConfigError(f"{where}: invalid YAML: {problem}", file=file, line=line, column=col)
    except yaml.YAMLError as exc:
        refused = ConfigError(f"{file}: invalid YAML: {exc.__class__.__name__}", file=file)
    except RecursionError:
        refused = ConfigError(f"{file}: YAML nested too deeply", file=file)
    finally:
        if loader is not None:
            loader.dispose()
    if refused is not None:
        # Raised outside the except: PyYAML's error (kept as __context__ otherwise) shows the
        # line it stopped at, and a config holds secrets.
        raise refused
    return Located(data, converter.positions, file)


def read_yaml_file(path: str | Path) -> Located:
    """Read and parse a YAML file; unreadable files, and files over
    :data:`MAX_YAML_BYTES`, raise :class:`ConfigError`."""
    name = str(path)
    shown = display_path(name)  # a NUL or lone surrogate in a configured path, escaped
    refused: ConfigError | None = None
    try:
        # Newlines as text mode reads them (universal newlines), which positions count by.
        text = read_limited(path, MAX_YAML_BYTES).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileTooLarge as exc:
        refused = ConfigError(f"{shown}: file {exc.strerror}", file=name)
    except (NotRegularFile, UnusablePath) as exc:  # our own words: say them
        refused = ConfigError(f"{shown}: cannot read file: {exc.strerror}", file=name)
    except (OSError, UnicodeDecodeError) as exc:
        refused = ConfigError(f"{shown}: cannot read file ({exc.__class__.__name__})", file=name)
    if refused is not None:
        raise refused  # outside the except: a UnicodeDecodeError holds the file's bytes
    return load_yaml(text, name)


def _field_path(loc: Sequence[str | int], data: Any) -> list[str | int]:
    """Map a pydantic error location onto the data, dropping the parts that are not
    places in the file (a discriminated union's member name, a plain union's member
    type): a missing field is named, the other parts must exist in the data."""
    path: list[str | int] = []
    cursor: Any = data
    absent = object()
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(cursor, dict):
            if part in cursor:
                cursor = cursor[part]
                path.append(part)
            elif last:
                path.append(part)  # a missing field: name it (its parent gives the position)
                cursor = absent
            # else: a union tag ('oidc', 'cognito', ...): not a place in the file
        elif isinstance(cursor, list) and isinstance(part, int) and 0 <= part < len(cursor):
            cursor = cursor[part]
            path.append(part)
        elif cursor is absent:
            path.append(part)
        # else: a union member of a scalar value ('str', 'dict[str,any]'): not a place
    return path


def _format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, str):
            part = printable(part)  # a key is the file's text: no escape sequence reaches a terminal
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


#: What a value must be, per pydantic type error, in our words (a union's members are joined by "or").
_KINDS = {
    "string_type": "a string",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "int_parsing_size": "a smaller whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "finite_number": "a finite number",
}


#: How close a typo must be to a known word to be suggested (difflib ratio; 'tll' -> 'ttl' is 0.67).
_CLOSE = 0.6


def _quoted_list(text: str) -> list[str]:
    """pydantic's ``"'a', 'b' or 'c'"`` as ``['a', 'b', 'c']``."""
    return [part.strip().strip("'\"") for part in text.replace(" or ", ", ").split(",") if part.strip()]


def _did_you_mean(value: Any, known: Sequence[str]) -> str:
    hint = difflib.get_close_matches(value, known, n=1, cutoff=_CLOSE) if isinstance(value, str) else []
    return f"did you mean {hint[0]!r}?" if hint else ""


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if not found:
            return None
        data = data[part]
    return data


def _message(err: Any, path: list[str | int], data: Any) -> str:
    """One pydantic error in our words. Input values are never echoed (a config may hold
    secrets), except a union tag (``provider``), which names a choice, not a secret."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field missing"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        name = str(ctx.get("discriminator", "")).strip("'\"") or "tag"
        known = _quoted_list(str(ctx.get("expected_tags", "")))
        if kind == "union_tag_not_found":
            return f"required field missing (one of {', '.join(known)})"
        tag = str(ctx.get("tag", ""))
        hint = _did_you_mean(tag, known)
        return f"unknown {name} {tag!r}; " + (f"{hint} " if hint else "") + f"known: {', '.join(known)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        hint = _did_you_mean(_value_at(data, path), _quoted_list(expected))
        return f"must be {expected}" + (f" ({hint})" if hint else "")
    bounds = {
        "greater_than": ("must be greater than", "gt"),
        "greater_than_equal": ("must be at least", "ge"),
        "less_than": ("must be less than", "lt"),
        "less_than_equal": ("must be at most", "le"),
        "too_short": ("must have at least", "min_length"),
        "too_long": ("must have at most", "max_length"),
        "string_too_short": ("must have at least", "min_length"),
        "string_too_long": ("must have at most", "max_length"),
    }
    if kind in bounds and bounds[kind][1] in ctx:
        words, key = bounds[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        unit = {"too_short": "item", "too_long": "item"}.get(kind, "character" if "string" in kind else "")
        plural = "s" if unit and bound != 1 else ""
        return f"{words} {bound}" + (f" {unit}{plural}" if unit else "")
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be "):
        message = "must be " + message[len("Input should be ") :]
    return message


UnknownKeyHint = Callable[[tuple[str | int, ...], Any], str | None]


def config_error_from_validation(
    exc: ValidationError,
    located: Located,
    what: str = "config",
    unknown_key_hint: UnknownKeyHint | None = None,
) -> ConfigError:
    """Translate a pydantic error into a located :class:`ConfigError`, in our words.

    Problems are ordered by their place in the file. An unknown key that is a
    close match of a missing field says "did you mean" and the missing field is
    not reported again; other unknown keys ask ``unknown_key_hint(path, data)``
    (the document's owner knows its vocabulary). The members of a union that all
    refused a value become one problem ("must be a string or a mapping").
    Input values are never echoed (a config may hold secrets).
    """
    data = located.data
    errors = exc.errors(include_input=False, include_url=False)
    paths = [_field_path(err["loc"], data) for err in errors]
    missing = {tuple(p) for err, p in zip(errors, paths, strict=True) if err["type"] == "missing"}
    explained: set[tuple[str | int, ...]] = set()
    problems: list[tuple[list[str | int], str]] = []
    kinds: dict[tuple[str | int, ...], list[str]] = {}
    for err, path in zip(errors, paths, strict=True):
        if err["type"] == "extra_forbidden":
            parent = tuple(path[:-1])
            absent = [str(p[-1]) for p in missing if p[:-1] == parent]
            close = difflib.get_close_matches(str(path[-1]), absent, n=1, cutoff=_CLOSE)
            if close:
                explained.add((*parent, close[0]))
                hint: str | None = f"did you mean {close[0]!r}?"
            else:
                hint = unknown_key_hint(tuple(path), data) if unknown_key_hint is not None else None
            problems.append((path, f"unknown key ({hint})" if hint else "unknown key"))
        elif err["type"] in _KINDS and len(err["loc"]) > len(path) and tuple(path) not in missing:
            kinds.setdefault(tuple(path), []).append(_KINDS[err["type"]])  # a union member refused it
        else:
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                name = str((err.get("ctx") or {}).get("discriminator", "")).strip("'\"")
                path = [*path, name] if name else path  # point at the tag's own line
            problems.append((path, _message(err, path, data)))
    for path_key, members in kinds.items():
        problems.append((list(path_key), "must be " + " or ".join(dict.fromkeys(members))))
    problems = [(p, m) for p, m in problems if not (m == "required field missing" and tuple(p) in explained)]

    def order(problem: tuple[list[str | int], str]) -> tuple[int, int, bool]:
        # A missing field points at its parent's line; an unknown key there explains it: first.
        line, col = located.position(problem[0]) or (0, 0)
        return line, col, problem[1] == "required field missing"

    problems.sort(key=order)  # stable: pydantic's order among the rest
    return config_error_from_problems(problems, located, what)


#: Problems a message lists: a file with thousands of errors (a generated list of bad values)
#: would otherwise print megabytes; the first ones say what to fix.
_MAX_SHOWN_PROBLEMS = 20


def config_error_from_problems(
    problems: Sequence[tuple[Sequence[str | int], str]], located: Located, what: str = "config"
) -> ConfigError:
    """A located :class:`ConfigError` from (field path, message) pairs, first one first."""
    lines: list[str] = []
    first: tuple[str, int | None, int | None] | None = None
    file = located.file or "<dict>"
    for path, message in problems:
        field = _format_path(path)
        pos = located.position(path) if located.positions else None
        where = f"{file}:{pos[0]}:{pos[1]}" if pos else file
        lines.append(f"{where}: {field}: {message}")
        if first is None:
            first = (field, pos[0] if pos else None, pos[1] if pos else None)
    assert first is not None
    field, line, col = first
    shown = lines[:_MAX_SHOWN_PROBLEMS]
    if len(lines) > len(shown):  # the message stays readable; ``problems`` keeps them all
        shown.append(f"... and {len(lines) - len(shown)} more problems")
    head = (
        lines[0] if len(lines) == 1 else f"invalid {what} ({len(lines)} problems):\n  " + "\n  ".join(shown)
    )
    return ConfigError(head, file=located.file, line=line, column=col, field=field, problems=tuple(lines))


def format_path(path: Sequence[str | int]) -> str:
    """``("issuers", 0, "jwks_uri")`` as ``issuers[0].jwks_uri``."""
    return _format_path(path)
