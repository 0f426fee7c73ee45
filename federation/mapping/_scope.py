"""Issuer scopes: which issuer strings listed in a mapping a token's issuer matches.

Owns: :class:`IssuerScope`, the one comparison behind ``issuers:`` sections and
``{issuer: ...}`` conditions. A listed string matches a token's issuer when it
is the same string, or when the token's provider profile reads both as one
namespace (``ProviderProfile.namespace_of``: Google's two issuer strings,
Cognito's two forms of a pool, Entra's v1 and v2 issuers of a tenant). The
listed strings are grouped by namespace once per provider name (a bounded set),
so matching costs one ``namespace_of`` call per token.

Must not: know about attributes, roles or deny rules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from federation import plugins

__all__ = ["IssuerScope", "of_form"]


def _namespace_of(provider: str) -> Callable[[str], str | None] | None:
    plugin = plugins.get(provider)
    return plugin.model.namespace_of if plugin is not None else None


class IssuerScope:
    """Issuer strings as listed in a mapping (file order kept), matched by namespace."""

    def __init__(self, listed: Iterable[str]) -> None:
        self.listed = tuple(dict.fromkeys(listed))
        self._exact = frozenset(self.listed)
        self._groups: dict[str, dict[_Key, tuple[str, ...]]] = {}  # provider -> key -> listed
        self._lock = threading.Lock()

    def matching(self, provider: str, issuer: str) -> tuple[str, ...]:
        """The listed strings that name ``issuer`` of ``provider``, in file order."""
        if not self.listed:
            return ()
        namespace_of = _namespace_of(provider)
        if namespace_of is None:  # an unknown profile: exact strings only
            return (issuer,) if issuer in self._exact else ()
        groups = self._groups.get(provider)
        if groups is None:
            built: dict[_Key, list[str]] = {}
            for listed in self.listed:
                built.setdefault(_key(namespace_of, listed), []).append(listed)
            with self._lock:
                groups = self._groups.setdefault(provider, {k: tuple(v) for k, v in built.items()})
        return groups.get(_key(namespace_of, issuer), ())


def of_form(provider: str, issuer: str) -> bool:
    """Whether ``issuer`` is spelled as an issuer of ``provider`` (its profile gives it a namespace)."""
    namespace_of = _namespace_of(provider)
    return namespace_of is not None and namespace_of(issuer) is not None


# A namespace, or the exact string of an issuer that is no issuer of the provider's form:
# tagged apart, so an exact string never stands in for a namespace.
_Key = tuple[bool, str]


def _key(namespace_of: Callable[[str], str | None], issuer: str) -> _Key:
    namespace = namespace_of(issuer)
    return (True, namespace) if namespace is not None else (False, issuer)
