"""The public face of mapping: :class:`Mapping`, loaded once, applied per login.

Owns: the constructors (``from_file``, ``from_yaml``, ``from_dict``,
``from_config``), building the evaluation context from a verified token or
from raw claims (dry runs), and handing both to the engine.

Must not: hold evaluation logic (the engine does) or know how users are stored.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation.errors import ConfigError
from federation.spi import Identity, Located, ProviderProfile

from ._compile import Planner, key_text
from ._engine import run
from ._identity import dry_run_identity, dry_run_token_type
from ._load import load_located, read_mapping_file, read_mapping_text
from ._model import PROVIDER_NAMES, MappingFile, mapping_json_schema
from ._paths import Context, make_context
from ._result import ExistingUser, MappingResult
from ._scope import IssuerScope, of_form

if TYPE_CHECKING:
    from federation.spi import TokenType, VerifiedToken

__all__ = ["Mapping"]


def _context(
    claims: AbcMapping[str, Any],
    identity: Identity,
    provider: str,
    issuer: str,
    subject: str,
    token_type: str,
) -> Context:
    return make_context(
        claims,
        {
            "email": identity.email,
            "email_verified": identity.email_verified,
            "username": identity.username,
            "groups": identity.groups,
            "roles": identity.roles,
            "groups_overage": identity.groups_overage,
            "provider": provider,
            "issuer": issuer,
            "subject": subject,
            "token_type": token_type,
        },
    )


class Mapping:
    """A compiled mapping file. Build once at start-up and share: it is immutable
    and thread-safe; :meth:`apply` is a pure function of its arguments.

    >>> mapping = Mapping.from_file("mapping.yaml")          # doctest: +SKIP
    >>> result = mapping.apply(bridge.verify(token))          # doctest: +SKIP
    >>> result.denied, result.attributes, result.roles        # doctest: +SKIP
    """

    def __init__(self, model: MappingFile, located: Located | None = None) -> None:
        self._model = model
        self._located = located
        self._planner = Planner(model)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Mapping:
        """Load a mapping file; raise :class:`ConfigError` naming file, line, column and field."""
        if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
            raise ConfigError(f"a mapping file is named by a path, not {type(path).__name__}")
        model, located = read_mapping_file(Path(path))
        return cls(model, located)

    @classmethod
    def from_yaml(cls, text: str, *, file: str = "<string>") -> Mapping:
        """Load a mapping from YAML text (``file`` names it in errors)."""
        given: object = text  # callers without a type checker pass paths and None
        if not isinstance(given, str):  # a path belongs to from_file
            hint = ": for a file, use Mapping.from_file" if isinstance(given, os.PathLike) else ""
            raise ConfigError(f"mapping YAML is text, not {type(given).__name__}{hint}")
        model, located = read_mapping_text(text, file)
        return cls(model, located)

    @classmethod
    def from_dict(cls, data: AbcMapping[str, Any]) -> Mapping:
        """Load a mapping from a dict (errors name the field path, without positions)."""
        if not isinstance(data, AbcMapping):
            raise ConfigError("<dict>: a mapping must be a dict at the top level")
        model, located = load_located(Located(dict(data), {}, None))
        return cls(model, located)

    @classmethod
    def from_config(
        cls, value: str | os.PathLike[str] | AbcMapping[str, Any], base_dir: str | Path
    ) -> Mapping:
        """Load ``BridgeConfig.mapping``: a path (relative to ``base_dir``, the config
        file's folder) or the mapping inline."""
        if isinstance(value, AbcMapping):
            return cls.from_dict(value)
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError("mapping: must be a file path or the mapping itself")
        path = Path(value)
        return cls.from_file(path if path.is_absolute() else Path(base_dir) / path)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """The JSON Schema of mapping files (for yaml-language-server and other editors)."""
        return mapping_json_schema()

    # -- introspection ------------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The file the mapping was read from (None for a dict)."""
        return self._located.file if self._located is not None else None

    def position(self, rule: str) -> tuple[int, int] | None:
        """The (line, column) of a trace entry's rule path in the file, when known."""
        if self._located is None or not self._located.positions:
            return None
        return self._located.positions.get(_parse_rule_path(rule))

    def unmatched_sections(
        self, issuers: Iterable[tuple[str, str]], *, open_providers: Collection[str] = ()
    ) -> list[str]:
        """The ``providers.<name>`` and ``issuers.<iss>`` sections that no token of these
        ``(provider, issuer)`` pairs can reach: their rules, deny rules included, never apply
        (a trailing slash is enough). Providers in ``open_providers`` accept issuers they
        cannot list (Entra's any tenant): issuer sections of their form are not judged."""
        pairs = list(issuers)
        providers = {provider for provider, _ in pairs}
        dead = [f"providers.{name}" for name in self._model.providers if name not in providers]
        scope = IssuerScope(self._model.issuers)
        reached = {listed for provider, issuer in pairs for listed in scope.matching(provider, issuer)}
        for listed in scope.listed:
            if listed in reached or any(of_form(p, listed) for p in open_providers):
                continue
            dead.append(f"issuers{key_text(listed)}")
        return dead

    # -- applying -----------------------------------------------------------------------

    @property
    def default_roles(self) -> frozenset[str]:
        """The base ``roles.default`` (what a local password account starts with)."""
        roles = self._model.roles
        return frozenset(roles.default) if roles is not None else frozenset()

    @property
    def privileged_roles(self) -> frozenset[str]:
        """``roles.privileged``: the roles only a rule with ``allow_privileged`` may grant."""
        roles = self._model.roles
        return frozenset(roles.privileged) if roles is not None else frozenset()

    def apply(self, token: VerifiedToken, existing: ExistingUser | None = None) -> MappingResult:
        """Map a verified token (and the local user it belongs to, if any)."""
        ctx = _context(
            token.claims, token.identity, token.provider, token.issuer, token.subject, token.token_type
        )
        return run(self._planner.plan(token.provider, token.issuer), ctx, existing)

    def apply_claims(
        self,
        claims: AbcMapping[str, Any],
        *,
        provider: str = "oidc",
        issuer: str | None = None,
        identity: Identity | None = None,
        existing: ExistingUser | None = None,
        token_type: TokenType | None = None,
        profile: ProviderProfile | None = None,
    ) -> MappingResult:
        """A dry run on raw, unverified claims.

        ``issuer`` defaults to the claims' ``iss``; ``token_type`` to what the
        provider would classify. The normalised view comes from ``identity``
        when given, else from ``profile`` (a configured issuer entry), else
        from the provider's rules with stand-in settings.
        """
        if not isinstance(claims, AbcMapping):
            raise TypeError("claims must be a mapping (a JSON object)")
        if profile is not None:
            provider = profile.provider
        if provider not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDER_NAMES)}")
        iss = issuer if issuer is not None else claims.get("iss")
        iss = iss if isinstance(iss, str) else ""
        kind: TokenType = token_type or dry_run_token_type(claims, profile)
        if identity is None:
            identity = dry_run_identity(claims, provider, iss, kind, profile)
        sub = claims.get("sub")
        ctx = _context(claims, identity, provider, iss, sub if isinstance(sub, str) else "", kind)
        return run(self._planner.plan(provider, iss), ctx, existing)

    def __repr__(self) -> str:
        return f"Mapping(source={self.source!r})"


def _parse_rule_path(rule: str) -> tuple[str | int, ...]:
    """``providers.cognito.roles.rules[0]`` as a path key (``issuers['x.y'].deny[1]`` too)."""
    parts: list[str | int] = []
    i, n = 0, len(rule)
    word: list[str] = []
    while i < n:
        ch = rule[i]
        if ch == ".":
            if word:
                parts.append("".join(word))
                word = []
            i += 1
        elif ch == "[":
            if word:
                parts.append("".join(word))
                word = []
            close = rule.find("]", i)
            inner = rule[i + 1 : close] if close > 0 else ""
            if inner.isdigit():
                parts.append(int(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                parts.append(inner[1:-1])
            i = close + 1 if close > 0 else n
        else:
            word.append(ch)
            i += 1
    if word:
        parts.append("".join(word))
    return tuple(parts)
