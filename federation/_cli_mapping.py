"""The mapping commands of the ``federation`` CLI: ``map`` (a dry run) and ``schema``.

Owns: ``federation map --mapping mapping.yaml --claims claims.json
[--provider P] [--issuer I] [--token-type id|access] [--existing user.json]
[--config federation.yaml] [--json]``, which applies a mapping to raw claims
and prints the result and the trace (exit 0 allowed, 1 denied; an invalid
file raises :class:`~federation.errors.ConfigError`, which the main CLI turns
into exit 2), and ``federation schema mapping``, which prints the JSON Schema
of mapping files for editors.

:func:`add_commands` registers both on the main parser's subparsers; each
command is ``run(args, out) -> exit code``.

Must not: hold mapping logic; it calls :class:`federation.mapping.Mapping` only.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from . import plugins
from ._files import FileTooLarge, NotRegularFile, UnusablePath, display_path, printable, read_limited
from ._json import StrictJSONError, loads_object
from .errors import ConfigError
from .mapping import Mapping as MappingRules
from .mapping import MappingResult

__all__ = ["EXIT_ALLOWED", "EXIT_DENIED", "add_commands"]

EXIT_ALLOWED, EXIT_DENIED = 0, 1
_MAX_INPUT = 1024 * 1024


def add_commands(subparsers: Any) -> None:
    """Add ``map`` and ``schema`` to the ``federation`` command's subparsers."""
    dry = subparsers.add_parser(
        "map",
        help="dry-run a mapping file on a token's claims; print the result and the trace",
        description="Apply a mapping to raw claims (nothing is verified) and explain every step. "
        "Exit codes: 0 allowed, 1 denied, 2 invalid mapping or input.",
    )
    dry.add_argument("--mapping", "-m", required=True, help="the mapping file (YAML)")
    dry.add_argument("--claims", required=True, help="a JSON object of claims, or '-' for standard input")
    dry.add_argument(
        "--provider",
        choices=plugins.names(),
        help="the provider profile whose normalisation ($email, $groups ...) applies; default oidc",
    )
    dry.add_argument("--issuer", help="the configured issuer string (default: the claims' iss)")
    dry.add_argument(
        "--token-type", choices=["id", "access"], help="default: what the provider would classify"
    )
    dry.add_argument(
        "--existing",
        help="a JSON object {attributes: {...}, roles: [...]}: the local user (default: a new user)",
    )
    dry.add_argument(
        "--config",
        "-c",
        help="federation.yaml: use the issuer entry the claims' iss routes to (exact normalisation)",
    )
    dry.add_argument("--json", action="store_true", help="print machine-readable JSON")
    dry.set_defaults(run=run_map)
    schema = subparsers.add_parser("schema", help="print a JSON Schema (for editors)")
    schema.add_argument(
        "format", choices=["mapping"], help="which file format (mapping: the mapping YAML; a config has none)"
    )
    schema.set_defaults(run=run_schema)


def _read_stdin(limit: int) -> bytes:
    """Up to ``limit`` bytes of standard input; ``OSError`` when there is none to read."""
    stdin = sys.stdin
    if stdin is None:  # started with stdin closed (`<&-`): Python sets it to None
        raise OSError(errno.EBADF, "standard input is closed")
    source = getattr(stdin, "buffer", None)  # a replaced sys.stdin may have text only
    if source is None:
        return stdin.read(limit).encode("utf-8", "surrogateescape")
    data: bytes = source.read(limit)
    return data


def _read_json(name: str, what: str) -> dict[str, Any]:
    shown = display_path(name)
    too_large = ConfigError(f"{shown}: {what} larger than {_MAX_INPUT} bytes", file=name)
    try:
        data = _read_stdin(_MAX_INPUT + 1) if name == "-" else read_limited(name, _MAX_INPUT)
    except FileTooLarge:
        raise too_large from None
    except (NotRegularFile, UnusablePath) as exc:
        raise ConfigError(f"{shown}: cannot read {what}: {exc.strerror}", file=name) from None
    except OSError as exc:
        reason = exc.strerror if name == "-" and exc.strerror else exc.__class__.__name__
        raise ConfigError(f"{shown}: cannot read {what} ({reason})", file=name) from None
    except ValueError:  # stdin: a closed stream object, or text that is not UTF-8
        raise ConfigError(f"{shown}: cannot read {what} (standard input unreadable)", file=name) from None
    if len(data) > _MAX_INPUT:
        raise too_large
    try:
        return loads_object(data.strip(), max_depth=32)
    except StrictJSONError as exc:
        raise ConfigError(f"{name}: {what} must be a JSON object ({exc})", file=name) from None


class _User:
    """An existing user read from JSON, as the ExistingUser protocol."""

    def __init__(self, data: dict[str, Any], name: str) -> None:
        attributes = data.get("attributes", {})
        roles = data.get("roles", [])
        unknown = set(data) - {"attributes", "roles"}
        if unknown or not isinstance(attributes, dict) or not isinstance(roles, list):
            raise ConfigError(
                f'{name}: the existing user is {{"attributes": {{...}}, "roles": [...]}}', file=name
            )
        if not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"{name}: roles must be strings", file=name)
        self._attributes = attributes
        self._roles = frozenset(roles)

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._attributes

    @property
    def roles(self) -> frozenset[str]:
        return self._roles


def _profile_for(config_file: str, claims: dict[str, Any], issuer: str | None) -> Any:
    from .config import load_config

    config = load_config(config_file)
    iss = issuer if issuer is not None else claims.get("iss")
    for entry in config.issuers:
        if iss in entry.trusted_issuers or (isinstance(iss, str) and entry.matches_issuer(iss, claims)):
            return entry
    shown = json.dumps(iss) if isinstance(iss, str) else "missing"
    raise ConfigError(
        f"{config_file}: no configured issuer matches the claims' iss ({shown})", file=config_file
    )


def run_map(args: argparse.Namespace, out: TextIO) -> int:
    """``federation map``: 0 when the mapping allows the login, 1 when it denies it."""
    mapping = MappingRules.from_file(args.mapping)
    claims = _read_json(args.claims, "claims")
    existing = _User(_read_json(args.existing, "existing user"), args.existing) if args.existing else None
    profile = _profile_for(args.config, claims, args.issuer) if args.config else None
    if profile is not None and args.provider and args.provider != profile.provider:
        raise ConfigError(
            f"--provider {args.provider} disagrees with the configured issuer entry ({profile.provider})"
        )
    result = mapping.apply_claims(
        claims,
        provider=args.provider or "oidc",
        issuer=args.issuer,
        existing=existing,
        token_type=args.token_type,
        profile=profile,
    )
    if args.json:
        # ASCII: a claim's value may hold controls (U+009B) or bidi overrides for a terminal.
        json.dump(_as_json(mapping, result), out, indent=2)
        out.write("\n")
    else:
        _print(mapping, result, out)
    return EXIT_ALLOWED if result.allowed else EXIT_DENIED


def _where(mapping: MappingRules, rule: str) -> str:
    pos = mapping.position(rule)
    return f"{Path(mapping.source or '').name}:{pos[0]}" if pos else ""


def _as_json(mapping: MappingRules, result: MappingResult) -> dict[str, Any]:
    return {
        "allowed": result.allowed,
        "denied": result.denied,
        "attributes": dict(result.attributes),
        "roles": sorted(result.roles),
        "granted": sorted(result.granted),
        "revoked": sorted(result.revoked),
        "trace": [
            {
                "rule": t.rule,
                "outcome": t.outcome,
                "detail": t.detail,
                "line": (mapping.position(t.rule) or (None,))[0],
            }
            for t in result.trace
        ],
    }


def _print(mapping: MappingRules, result: MappingResult, terminal: TextIO) -> None:
    # Claims, roles and trace details are the token's text: escaped, line by line.
    out = _Escaping(terminal)
    name = mapping.source or "mapping"
    out.write(f"{name}: {'allowed' if result.allowed else 'DENIED (' + str(result.denied) + ')'}\n")
    if result.allowed:
        out.write("\nattributes to write\n")
        if not result.attributes:
            out.write("  (none)\n")
        width = max((len(k) for k in result.attributes), default=0)
        for key, value in result.attributes.items():
            out.write(f"  {key:<{width}}  {json.dumps(value, ensure_ascii=False)}\n")
        out.write("\nroles\n")
        out.write(f"  final    {', '.join(sorted(result.roles)) or '(none)'}\n")
        out.write(f"  granted  {', '.join(sorted(result.granted)) or '-'}\n")
        out.write(f"  revoked  {', '.join(sorted(result.revoked)) or '-'}\n")
    out.write("\ntrace\n")
    rows = [(_where(mapping, t.rule), t.rule, t.outcome, t.detail) for t in result.trace]
    w0 = max((len(r[0]) for r in rows), default=0)
    w1 = max((len(r[1]) for r in rows), default=0)
    w2 = max((len(r[2]) for r in rows), default=0)
    for where, rule, outcome, detail in rows:
        out.write(f"  {where:<{w0}}  {rule:<{w1}}  {outcome:<{w2}}  {detail}".rstrip() + "\n")


class _Escaping:
    """Writes each line with what is not printable escaped (``\\x9b``, ``\\u202e``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> None:
        lines = text.split("\n")
        self._out.write("\n".join(printable(line) for line in lines))


def run_schema(args: argparse.Namespace, out: TextIO) -> int:
    """``federation schema mapping``: the JSON Schema, for yaml-language-server."""
    json.dump(MappingRules.json_schema(), out, indent=2)
    out.write("\n")
    return EXIT_ALLOWED
