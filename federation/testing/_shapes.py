"""Claim shapes: what one identity provider's tokens look like, for the mock issuer.

Owns: :class:`ProviderShape` (how a provider's mock issuer is set up from the
provider's own vocabulary, which claims and header members its tokens carry,
and the bridge configuration entry that trusts it) and the registry of shapes
keyed by provider name that :meth:`MockIdP.for_provider
<federation.testing.MockIdP.for_provider>` reads.

Extension point: a provider plugin (:class:`federation.plugins.ProviderPlugin`)
names its shape as ``"module:attr"``; the first time a name is asked for,
its plugin's shape is imported and registered here, so the library's runtime
never imports test code. Anyone else (an application, a test) calls
:func:`register_provider` directly.

Must not: perform I/O, or be imported by the library's runtime code paths.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from federation import plugins

from ._traits import ProviderTraits

if TYPE_CHECKING:
    from ._mockidp import MockIdP

__all__ = [
    "ProviderShape",
    "TokenKind",
    "provider_shape",
    "register_provider",
    "registered_providers",
    "unregister_provider",
]

#: The two kinds of token an issuer mints (the engine's ``token_type``).
TokenKind = Literal["id", "access"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _pass_through(**params: Any) -> dict[str, Any]:
    return dict(params)


def _no_headers(idp: MockIdP, kind: TokenKind) -> dict[str, Any]:
    return {}


def _same_entry(idp: MockIdP, entry: dict[str, Any]) -> dict[str, Any]:
    return entry


def _same_jwks(idp: MockIdP, document: dict[str, Any]) -> dict[str, Any]:
    return document


@dataclass(frozen=True, slots=True)
class ProviderShape:
    """How one provider's tokens and issuer look.

    ``name``
        The provider name (``provider:`` in the bridge configuration).
    ``claims(idp, kind, now)``
        The default claims of a token of ``kind`` (``"id"`` or ``"access"``)
        minted at Unix time ``now``, *without* ``iat``/``exp``/``nbf`` (the mock
        sets those, so ``expired=True`` and friends work for every provider).
        Read ``idp.issuer``, ``idp.audience`` and ``idp.provider_params``.
    ``setup(**params)``
        Turns the provider's vocabulary (``region=``, ``user_pool_id=``,
        ``tenant_id=`` ...) into :class:`MockIdP` keyword arguments (``issuer``,
        ``audience``, ``jwks_path`` or ``jwks_uri``, ``alg``, ``key_format`` ...).
        Keywords it does not know (``clock=``, ``algorithms=`` ...) must be
        passed through. It may return ``provider_params``: the provider's
        vocabulary with its defaults resolved, which becomes
        ``idp.provider_params`` (otherwise the ``for_provider`` keywords do).
    ``headers(idp, kind)``
        Extra JOSE header members (after ``alg``/``kid``/``typ: JWT``, before
        the caller's ``headers=``), e.g. ``{"typ": "at+jwt"}``.
    ``issuer_config(idp, entry)``
        Adapts the generic issuer entry (``provider``, ``issuer``,
        ``audiences`` and ``jwks_uri`` unless discovery is wanted) to the
        provider profile's configuration vocabulary.
    ``jwks(idp, document)``
        Adapts the JWK Set the mock publishes (``{"keys": [public JWK ...]}``,
        each with ``kid``, ``alg`` and ``use``) to the provider's, e.g. Entra's
        keys carry an ``issuer`` member and no ``alg``. Return a new document;
        ``idp.jwks()`` and the served key set go through it.
    ``jwt_access_tokens``
        False when the provider's access tokens are opaque strings (Google): the
        mock's token endpoint then answers with a random one (its ``at_hash`` in
        the id token), and ``mint(token_type="access")`` is the shape's to refuse.
    ``id_token_azp``
        Whether the id tokens of the mock's code flow name the client in ``azp``
        (OIDC lets them; Entra's never do, and its profile reads ``azp`` as an
        access token's).
    ``traits``
        What the real issuer does beyond its claims (:class:`ProviderTraits`: key
        ids, keys per token kind, endpoints, ``iss`` on the redirect, caching).
    """

    name: str
    claims: Callable[[MockIdP, TokenKind, int], dict[str, Any]]
    setup: Callable[..., dict[str, Any]] = _pass_through
    headers: Callable[[MockIdP, TokenKind], dict[str, Any]] = _no_headers
    issuer_config: Callable[[MockIdP, dict[str, Any]], dict[str, Any]] = _same_entry
    jwks: Callable[[MockIdP, dict[str, Any]], dict[str, Any]] = _same_jwks
    jwt_access_tokens: bool = True
    id_token_azp: bool = True
    traits: ProviderTraits = field(default_factory=ProviderTraits)


_REGISTRY: dict[str, ProviderShape] = {}
_LOCK = threading.Lock()


def register_provider(shape: ProviderShape, *, replace: bool = False) -> ProviderShape:
    """Make ``shape`` available to ``MockIdP.for_provider(shape.name)``.

    Registering a name twice is an error unless ``replace=True``.
    """
    if not _NAME.fullmatch(shape.name):
        raise ValueError(f"provider name {shape.name!r} must match {_NAME.pattern}")
    with _LOCK:
        if shape.name in _REGISTRY and not replace and _REGISTRY[shape.name] is not shape:
            raise ValueError(f"a claim shape for provider {shape.name!r} is already registered")
        _REGISTRY[shape.name] = shape
    return shape


def unregister_provider(name: str) -> None:
    """Forget the shape registered for ``name`` (no error when there is none)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def registered_providers() -> tuple[str, ...]:
    """The provider names with a registered shape, sorted (built-in ones once loaded)."""
    provider_shape("oidc")  # the generic shape is always there
    with _LOCK:
        return tuple(sorted(_REGISTRY))


def provider_shape(name: str) -> ProviderShape:
    """The shape registered for ``name``, importing its provider plugin's shape on first use.

    Raises :class:`LookupError` naming the registered providers when there is none.
    """
    with _LOCK:
        shape = _REGISTRY.get(name)
    if shape is not None:
        return shape
    plugin = plugins.get(name)
    loaded = plugin.load_shape() if plugin is not None else None
    if loaded is not None:
        with _LOCK:
            _REGISTRY.setdefault(name, loaded)  # a shape registered meanwhile wins
    with _LOCK:
        shape = _REGISTRY.get(name)
    if shape is None:
        known = _every_name()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) if isinstance(name, str) else []
        if not close and isinstance(name, str):  # "azure" for "azure_ad": a prefix counts too
            close = [k for k in known if k.startswith(name.lower())][:1]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LookupError(
            f"no claim shape for provider {name!r} (registered: {', '.join(known) or 'none'}){hint}"
        )
    return shape


def _every_name() -> list[str]:
    """Every provider name a shape can be had for: the registered ones and every plugin's
    (the shipped shapes load lazily, so listing only the registry would name just ``oidc``)."""
    names = set(plugins.names())
    with _LOCK:
        names.update(_REGISTRY)
    return sorted(names)


def profile_key_url(idp: MockIdP, entry: Mapping[str, Any]) -> None:
    """Refuse an entry pointing at another key URL than the one the profile derives.

    For shapes whose profile computes its key URL from its own vocabulary (a
    Cognito pool, Google, Firebase ...): the loopback server
    (``served=True``) cannot stand in for that URL, so say so instead of
    letting the bridge reach for the real provider.
    """
    jwks_uri = entry.get("jwks_uri")
    if jwks_uri is not None and jwks_uri != idp.jwks_uri:
        raise ValueError(
            f"the {idp.provider} profile fetches its keys from {idp.jwks_uri} and cannot be pointed "
            "elsewhere: use idp.bridge() or 'with idp:' instead of served=True"
        )


def merge_headers(base: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` updated with ``extra``; a value of None drops the member."""
    for name, value in (extra or {}).items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base
