"""Testing toolkit: a mock identity provider and helpers, for your tests and ours.

::

    from federation.testing import MockIdP

    idp = MockIdP(issuer="https://idp.test", audience="my-client")
    bridge = idp.bridge()                       # wired to the mock, no network
    assert bridge.verify(idp.mint(sub="u1")).subject == "u1"

What is here:

* :class:`MockIdP`: an in-process issuer with real keys (RSA 2048 by default,
  EC and Ed25519 on request), a JWKS, an OIDC discovery document and a token
  minter (``mint(expired=True)``, ``kid=``, ``alg=``, ``headers=``,
  ``not_before=``, ``token_type="access"`` ...); key rotation; outages
  (``outage(status=500)``, ``outage(timeout=True)``, ``recover()``); a record
  of the requests it served (``requests``, ``requests_to("jwks")``).
  It plugs into httpx three ways: ``with idp:`` (respx: every httpx client in
  the block; unmocked hosts fail), ``idp.transport()``/``idp.client()`` (for
  an application that injects its own client), and ``with idp.serve() as url:``
  (a real HTTP server on 127.0.0.1, for code that does not use httpx). The
  matching bridge configuration comes from ``idp.bridge_config()``.
* :class:`FrozenClock`: a manually advanced clock for the mock and the bridge.
* Provider claim shapes: ``MockIdP.for_provider(name, ...)`` mints tokens
  shaped like that provider's (``cognito``, ``okta``, ``azure_ad``,
  ``azure_ad_b2c``, ``keycloak``, ``google``, ``firebase``, ``oidc``), set up
  from the provider's own vocabulary, serves its keys where and how the
  provider does (an Entra-style JWK Set, Google's ``{kid: PEM certificate}``
  map for Firebase: ``key_format="x509_pem_map"``), and configures the bridge
  in the provider profile's vocabulary; :func:`register_provider` adds a
  :class:`ProviderShape`.
* A pytest plugin (``federation.testing.pytest_plugin``, registered through
  the ``pytest11`` entry point): the ``mock_idp`` factory fixture and the
  ``federation_clock`` fixture.

Guide: ``docs/testing.md``.

Must not: be imported by the library's runtime code paths (only the CLI demo
uses it).
"""

from __future__ import annotations

from ._clock import FrozenClock
from ._keys import SigningKey, generate_signing_key
from ._mockidp import MockIdP, mock_transport, x509_jwk_members
from ._shapes import (
    ProviderShape,
    TokenKind,
    profile_key_url,
    provider_shape,
    register_provider,
    registered_providers,
    unregister_provider,
)
from ._traits import ProviderTraits, base64url_kid, hex_kid, standard_base64_kid

__all__ = [
    "FrozenClock",
    "MockIdP",
    "ProviderShape",
    "ProviderTraits",
    "SigningKey",
    "TokenKind",
    "base64url_kid",
    "generate_signing_key",
    "hex_kid",
    "mock_transport",
    "profile_key_url",
    "provider_shape",
    "register_provider",
    "registered_providers",
    "standard_base64_kid",
    "unregister_provider",
    "x509_jwk_members",
]
