"""YAML loading that remembers where every value came from.

Owns: parsing a YAML document safely (``SafeLoader`` only, duplicate keys
refused) into plain Python data plus a map from each value's path to its
1-based (line, column), and turning pydantic validation errors into a
:class:`~federation.errors.ConfigError` that names the file, line, column and
field. Used by the bridge config now and by the mapping file later.

Must not: know what the documents mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError

__all__ = [
    "Located",
    "config_error_from_problems",
    "config_error_from_validation",
    "format_path",
    "load_yaml",
    "read_yaml_file",
]

PathKey = tuple[str | int, ...]


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
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves '<<' merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = (
                    self.loader.construct_object(key_node, deep=True)
                    if isinstance(key_node, yaml.ScalarNode)
                    else None
                )
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
        return self.loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document; raise :class:`ConfigError` with a position on failure."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader may already refuse the characters
        node = loader.get_single_node()
        converter = _Converter(loader, file)
        data = None if node is None else converter.convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        where = f"{file}:{line}:{col}" if line else file
        raise ConfigError(
            f"{where}: invalid YAML: {exc.problem or exc.context}", file=file, line=line, column=col
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc.__class__.__name__}", file=file) from None
    except RecursionError:
        raise ConfigError(f"{file}: YAML nested too deeply", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(data, converter.positions, file)


def read_yaml_file(path: str | Path) -> Located:
    """Read and parse a YAML file; unreadable files raise :class:`ConfigError`."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read file ({exc.__class__.__name__})", file=name) from None
    return load_yaml(text, name)


def _field_path(loc: Sequence[str | int], data: Any) -> list[str | int]:
    """Map a pydantic error location onto the data, dropping union-tag parts."""
    path: list[str | int] = []
    cursor = data
    for part in loc:
        if isinstance(cursor, dict):
            if part in cursor:
                cursor = cursor[part]
            elif cursor.get("provider") == part:
                continue  # pydantic names the discriminated-union member; not a field
            else:
                cursor = None  # a missing field: name it, point at its parent
            path.append(part)
        elif isinstance(cursor, list) and isinstance(part, int) and 0 <= part < len(cursor):
            cursor = cursor[part]
            path.append(part)
        else:
            cursor = None
            path.append(part)
    return path


def _format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def config_error_from_validation(exc: ValidationError, located: Located, what: str = "config") -> ConfigError:
    """Translate a pydantic error into a located :class:`ConfigError`.

    Input values are never echoed (a config may hold secrets).
    """
    problems: list[tuple[Sequence[str | int], str]] = []
    for err in exc.errors(include_input=False, include_url=False):
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append((_field_path(err["loc"], located.data), message))
    return config_error_from_problems(problems, located, what)


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
    head = (
        lines[0] if len(lines) == 1 else f"invalid {what} ({len(lines)} problems):\n  " + "\n  ".join(lines)
    )
    return ConfigError(head, file=located.file, line=line, column=col, field=field, problems=tuple(lines))


def format_path(path: Sequence[str | int]) -> str:
    """``("issuers", 0, "jwks_uri")`` as ``issuers[0].jwks_uri``."""
    return _format_path(path)
