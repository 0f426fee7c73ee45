"""Loading a mapping: YAML or a dict to a validated :class:`MappingFile`, or a located error.

Owns: reading the file (through the safe YAML reader of :mod:`federation.spi`: safe loader,
duplicate keys refused, positions kept), bounding the data's expanded size and
nesting before anything walks it (YAML aliases share objects: an alias bomb is
refused, not expanded; deep or cyclic dicts are refused, not recursed into),
validating it against the schema,
the checks that span fields (privileged roles in defaults and in rules
without ``allow_privileged``, overlay roles without a base ``roles`` section,
condition depth), and turning every problem into one
:class:`~federation.errors.ConfigError` naming file, line, column and field
path, e.g. ``mapping.yaml:14:9: roles.rules[1].when.matches: invalid regular
expression: ...``. All problems are listed, in file order.

Must not: compile or run rules.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from federation.errors import ConfigError
from federation.spi import Located, config_error_from_problems, load_yaml, read_yaml_file

from ._conditions import MAX_DEPTH, condition_depth
from ._model import (
    AttributeSpec,
    Condition,
    DenyRule,
    MappingFile,
    Overlay,
    OverlayRoles,
    RoleRule,
    RolesSpec,
)

__all__ = ["load_located", "read_mapping_file", "read_mapping_text"]

PathKey = tuple[str | int, ...]
Problem = tuple[PathKey, str]
WHAT = "mapping"

_MODELS: tuple[type[BaseModel], ...] = (
    MappingFile,
    AttributeSpec,
    Condition,
    DenyRule,
    Overlay,
    OverlayRoles,
    RoleRule,
    RolesSpec,
)
#: Every key a mapping file may use somewhere, for "did you mean" hints.
_VOCABULARY = sorted({f.alias or name for m in _MODELS for name, f in m.model_fields.items()})
_GLOBAL_ROLE_KEYS = ("sync", "protected", "privileged")

#: Most values (lists, mappings and scalars, keys aside) a mapping may hold once YAML
#: aliases are expanded. The YAML reader's node budget is the same number, so a file
#: without aliases never meets it; an alias bomb, which the reader keeps small by
#: sharing objects, is refused here before anything walks it once per reference.
MAX_VALUES = 100_000
#: Deepest nesting of lists and mappings. The schema needs about 40 (conditions at
#: their own limit inside an overlay); deeper data would only reach RecursionError.
MAX_NESTING = 64


def read_mapping_file(path: str | Path) -> tuple[MappingFile, Located]:
    """Read and validate a mapping file."""
    return load_located(read_yaml_file(path))


def read_mapping_text(text: str, file: str = "<string>") -> tuple[MappingFile, Located]:
    """Validate a mapping given as YAML text."""
    return load_located(load_yaml(text, file))


def load_located(located: Located) -> tuple[MappingFile, Located]:
    """Validate parsed data; raise :class:`ConfigError` listing every problem."""
    data = located.data
    if not isinstance(data, dict):
        file = located.file or "<dict>"
        raise ConfigError(f"{file}: a mapping must be a YAML mapping at the top level", file=located.file)
    shape = _shape_problem(data)
    problems = [shape] if shape is not None else list(_nulls(data, ()))
    if not problems:
        try:
            model = MappingFile.model_validate(data)
        except ValidationError as exc:
            problems = _validation_problems(exc, data)
        else:
            problems = cross_field_problems(model)
            if not problems:
                return model, located
    raise _error(problems, located)


def _error(problems: list[Problem], located: Located) -> ConfigError:
    def order(problem: Problem) -> tuple[int, int]:
        pos = located.position(problem[0])
        return pos if pos is not None else (0, 0)

    unique = list(dict.fromkeys(problems))
    unique.sort(key=order)
    return config_error_from_problems(unique, located, WHAT)


class _Frame:
    """A list or mapping being measured: its path and the values counted under it so far."""

    __slots__ = ("children", "obj", "path", "total")

    def __init__(self, obj: dict[Any, Any] | list[Any], path: PathKey) -> None:
        self.obj = obj
        self.path = path
        self.children: Iterator[tuple[Any, Any]] = iter(
            obj.items() if isinstance(obj, dict) else enumerate(obj)
        )
        self.total = 1


def _shape_problem(data: Any) -> Problem | None:
    """Why ``data`` is too big, too deep or cyclic to validate, or None.

    Every later step (the null check, pydantic, the checks across fields, the compiler)
    walks the data once per *reference*, and objects that YAML aliases share stay shared
    here: so their expanded size is measured first. Each shared object is measured once
    (memoised by id), without recursion, so this costs time linear in the document and
    raises no RecursionError whatever the depth.
    """
    if not isinstance(data, (dict, list)):
        return None
    sizes: dict[int, int] = {}  # id -> expanded value count, for each finished container
    active: set[int] = {id(data)}  # containers on the stack: meeting one again is a cycle
    stack = [_Frame(data, ())]
    while stack:
        frame = stack[-1]
        step = next(frame.children, None)
        if step is None:
            stack.pop()
            active.discard(id(frame.obj))
            sizes[id(frame.obj)] = frame.total
            if stack:
                stack[-1].total += frame.total
                if stack[-1].total > MAX_VALUES:
                    return _too_many(stack[-1].path)
            continue
        key, child = step
        if not isinstance(child, (dict, list)):
            frame.total += 1
        elif id(child) in sizes:
            frame.total += sizes[id(child)]
        elif id(child) in active:
            return (*frame.path, key), "the data contains itself (a recursive structure)"
        elif len(stack) >= MAX_NESTING:
            return (*frame.path, key), f"nested more than {MAX_NESTING} levels deep"
        else:
            active.add(id(child))
            stack.append(_Frame(child, (*frame.path, key)))
            continue
        if frame.total > MAX_VALUES:
            return _too_many(frame.path)
    return None


def _too_many(path: PathKey) -> Problem:
    return path, (
        f"more than {MAX_VALUES} values once YAML aliases are expanded "
        "(each use of an alias repeats its anchor's whole content)"
    )


def _nulls(data: Any, path: PathKey) -> Iterator[Problem]:
    """Explicit nulls (``key:`` with nothing after it) are refused at their exact place."""
    if isinstance(data, dict):
        for key, value in data.items():
            if value is None:
                yield (*path, key), "null is not allowed here (give a value or leave the key out)"
            else:
                yield from _nulls(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if value is None:
                yield (*path, index), "null is not allowed here"
            else:
                yield from _nulls(value, (*path, index))


def _data_path(loc: Sequence[str | int], data: Any) -> PathKey:
    """A pydantic error location as a path into the data (union and key tags dropped)."""
    path: list[str | int] = []
    cursor: Any = data
    absent = object()
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(cursor, dict):
            # a missing field: name it, point at its parent
            cursor = cursor.get(part, absent)
            path.append(part)
        elif isinstance(cursor, list) and isinstance(part, int) and 0 <= part < len(cursor):
            cursor = cursor[part]
            path.append(part)
        elif cursor is absent:
            path.append(part)
        # else: a tag pydantic adds inside a value (a union member, a list position of
        # a value written as a single item): not a place in the file.
    return tuple(path)


def _message(err: Any, path: PathKey) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = path[-1] if path else ""
        if (
            len(path) == 4
            and path[0] in ("providers", "issuers")
            and path[2] == "roles"
            and key in _GLOBAL_ROLE_KEYS
        ):
            return f"unknown key: {key} is set once, in the top-level roles section"
        hint = difflib.get_close_matches(str(key), _VOCABULARY, n=1, cutoff=0.75)
        return f"unknown key (did you mean {hint[0]!r}?)" if hint else "unknown key"
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind == "missing":
        return "required field missing"
    if "[key]" in err["loc"]:
        return f"invalid key: {message}"
    return message


def _validation_problems(exc: ValidationError, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_input=False, include_url=False):
        path = _data_path(err["loc"], data)
        problems.append((path, _message(err, path)))
    return problems


# -- checks across fields -----------------------------------------------------------------


def _rules_problems(
    rules: Sequence[RoleRule], prefix: PathKey, privileged: frozenset[str]
) -> Iterator[Problem]:
    for i, rule in enumerate(rules):
        where = (*prefix, i)
        yield from _depth_problems(rule.when, (*where, "when"))
        if rule.allow_privileged:
            if rule.grant_from is not None and rule.only is None:
                yield (
                    (*where, "only"),
                    "a grant_from rule with allow_privileged must list the roles it may grant in 'only'",
                )
            continue
        for j, role in enumerate(rule.grant):
            if role in privileged:
                yield (
                    (*where, "grant", j),
                    f"role {role!r} is privileged (roles.privileged): the rule needs allow_privileged: true",
                )
        for j, role in enumerate(rule.only or ()):
            if role in privileged:
                yield (
                    (*where, "only", j),
                    f"role {role!r} is privileged (roles.privileged): the rule needs allow_privileged: true",
                )


def _defaults_problems(
    defaults: Sequence[str], prefix: PathKey, privileged: frozenset[str]
) -> Iterator[Problem]:
    for j, role in enumerate(defaults):
        if role in privileged:
            yield (
                (*prefix, j),
                f"role {role!r} is privileged (roles.privileged): privileged roles are granted "
                "only by rules with allow_privileged: true, never by default",
            )


def _depth_problems(cond: Condition | None, where: PathKey) -> Iterator[Problem]:
    if cond is not None and condition_depth(cond) > MAX_DEPTH:
        yield where, f"conditions nested deeper than {MAX_DEPTH} levels"


def _section_problems(
    attributes: dict[str, AttributeSpec], deny: Sequence[DenyRule], prefix: PathKey
) -> Iterator[Problem]:
    for name, spec in attributes.items():
        yield from _depth_problems(spec.when, (*prefix, "attributes", name, "when"))
    for i, rule in enumerate(deny):
        yield from _depth_problems(rule.when, (*prefix, "deny", i, "when"))


def cross_field_problems(model: MappingFile) -> list[Problem]:
    """Checks that need more than one field, each with the exact path to blame."""
    problems: list[Problem] = list(_section_problems(model.attributes, model.deny, ()))
    roles = model.roles
    privileged = frozenset(roles.privileged) if roles is not None else frozenset()
    if roles is not None:
        problems += _defaults_problems(roles.default, ("roles", "default"), privileged)
        problems += _rules_problems(roles.rules, ("roles", "rules"), privileged)
    for section, overlays in (("providers", model.providers), ("issuers", model.issuers)):
        for key, overlay in overlays.items():
            prefix: PathKey = (section, key)
            problems += _section_problems(overlay.attributes, overlay.deny, prefix)
            if overlay.roles is None:
                continue
            if roles is None:
                problems.append(
                    (
                        (*prefix, "roles"),
                        "role additions need a top-level roles section (it chooses sync and lists "
                        "protected and privileged roles)",
                    )
                )
                continue
            problems += _defaults_problems(overlay.roles.default, (*prefix, "roles", "default"), privileged)
            problems += _rules_problems(overlay.roles.rules, (*prefix, "roles", "rules"), privileged)
    return problems
