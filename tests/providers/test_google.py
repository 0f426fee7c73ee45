"""The Google profile: both issuer spellings (and nothing else), RS256 only, id
tokens only, ``aud`` and ``azp`` among the client ids, ``hd`` for domain
restriction (never the email suffix), and Google's rule for when
``email_verified`` can be trusted.

Tokens are Google's documented payloads (providers.md §5.8: the Sign In With
Google reference credential and the legacy OIDC sample with the scheme-less
issuer and a string ``email_verified``), re-signed with a test key that has a
Google-shaped 40-hex kid and re-dated to the frozen clock. Keys are served at
``https://www.googleapis.com/oauth2/v3/certs``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kgf_helpers import KeyServer, Mode, rejects, run
from federation.providers.google import GOOGLE_JWKS_URI, GoogleConfig

from federation import Bridge
from federation.errors import (
    BadSignature,
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    InvalidClaim,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key

NOW = 1_800_000_000
PI = "314159265-pi.apps.googleusercontent.com"
LEGACY_CLIENT = "1234987819200.apps.googleusercontent.com"
ENTRY: dict[str, Any] = {"provider": "google", "client_ids": [PI, LEGACY_CLIENT]}


def sign_in_with_google(**overrides: Any) -> dict[str, Any]:
    """The reference credential of Sign In With Google (its placeholder nbf re-dated too)."""
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "nbf": NOW - 60,
        "aud": PI,
        "sub": "3141592653589793238",
        "hd": "gmail.com",
        "email": "elisa.g.beckett@gmail.com",
        "email_verified": True,
        "azp": PI,
        "name": "Elisa Beckett",
        "picture": "https://lh3.googleusercontent.com/a-/e2718281828459045235360uler",
        "given_name": "Elisa",
        "family_name": "Beckett",
        "iat": NOW,
        "exp": NOW + 3600,
        "jti": "abc161803398874def",
    }
    claims.update(overrides)
    return claims


def legacy_oidc(**overrides: Any) -> dict[str, Any]:
    """The legacy OIDC sample: scheme-less issuer, string email_verified, hd example.com."""
    claims: dict[str, Any] = {
        "iss": "accounts.google.com",
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "email_verified": "true",
        "sub": "10769150350006150715113082367",
        "azp": LEGACY_CLIENT,
        "email": "jsmith@example.com",
        "aud": LEGACY_CLIENT,
        "iat": NOW,
        "exp": NOW + 3900,
        "nonce": "0394852-3190485-2490358",
        "hd": "example.com",
        "jti": None,
    }
    claims.update(overrides)
    return claims


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return generate_signing_key("RS256", kid=secrets.token_hex(20))


@pytest.fixture(scope="module")
def idp(clock: FrozenClock) -> MockIdP:
    return MockIdP(issuer="https://accounts.google.com", audience=PI, clock=clock)


@pytest.fixture(scope="module")
def server(google_key: SigningKey) -> KeyServer:
    server = KeyServer()
    server.add(GOOGLE_JWKS_URI, lambda: {"keys": [google_key.public_jwk]}, max_age=21532)
    return server


@pytest.fixture(scope="module")
def bridge(server: KeyServer, clock: FrozenClock) -> Iterator[Bridge]:
    with server.bridge({"issuers": [ENTRY]}, clock) as bridge:
        yield bridge


@pytest.fixture(scope="module")
def workspace_bridge(server: KeyServer, clock: FrozenClock) -> Iterator[Bridge]:
    entry = {**ENTRY, "hosted_domains": ["example.com"]}
    with server.bridge({"issuers": [entry]}, clock) as bridge:
        yield bridge


@pytest.fixture
def mint(idp: MockIdP, google_key: SigningKey) -> Any:
    def _mint(claims: dict[str, Any], **kw: Any) -> str:
        kw.setdefault("key", None if "alg" in kw else google_key)
        return idp.mint(claims, **kw)

    return _mint


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    mode: Mode = request.param
    return mode


# -- accepted ----------------------------------------------------------------------------------


def test_sign_in_with_google_reference_credential(bridge: Bridge, mint: Any, mode: Mode) -> None:
    vt = run(bridge, mint(sign_in_with_google()), mode)
    assert (vt.provider, vt.token_type, vt.issuer) == ("google", "id", "https://accounts.google.com")
    assert vt.identity_key == ("https://accounts.google.com", "3141592653589793238")
    assert (vt.email, vt.email_verified) == ("elisa.g.beckett@gmail.com", True)
    assert (vt.username, vt.groups, vt.roles) == (None, (), ())


def test_legacy_scheme_less_issuer_and_string_email_verified(bridge: Bridge, mint: Any, mode: Mode) -> None:
    vt = run(bridge, mint(legacy_oidc()), mode)
    assert vt.issuer == "accounts.google.com"
    # one user, one key, whichever issuer spelling the token carries
    assert vt.identity_key == ("https://accounts.google.com", "10769150350006150715113082367")
    assert (vt.email, vt.email_verified) == ("jsmith@example.com", True)  # Workspace (hd) account


def test_both_issuer_spellings_give_the_same_identity_key(bridge: Bridge, mint: Any) -> None:
    a = bridge.verify(mint(sign_in_with_google()))
    b = bridge.verify(mint(sign_in_with_google(iss="accounts.google.com")))
    assert a.identity_key == b.identity_key


@pytest.mark.parametrize(
    ("email", "hd", "verified", "trusted"),
    [
        ("someone@gmail.com", None, True, True),
        ("Someone@GMAIL.com", None, True, True),
        ("someone@yahoo.com", None, True, False),  # Google is not authoritative for that mailbox
        ("someone@example.com", "example.com", True, True),
        ("someone@example.com", "example.com", False, False),
        ("someone@gmail.com", None, "false", False),
        ("someone@gmail.com", None, 1, False),
        (None, "example.com", True, False),
    ],
)
def test_email_verified_only_where_google_is_authoritative(
    bridge: Bridge, mint: Any, email: str | None, hd: str | None, verified: object, trusted: bool
) -> None:
    vt = bridge.verify(mint(sign_in_with_google(email=email, hd=hd, email_verified=verified)))
    assert vt.email == email
    assert vt.email_verified is trusted


def test_azp_is_optional(bridge: Bridge, mint: Any) -> None:
    assert bridge.verify(mint(sign_in_with_google(azp=None))).subject == "3141592653589793238"


@pytest.mark.parametrize(
    ("hd", "email"),
    [("example.com", "jsmith@example.com"), ("EXAMPLE.com", "j@example.com"), ("example.com", "j@ex2.org")],
)
def test_hosted_domain_is_checked_on_hd(workspace_bridge: Bridge, mint: Any, hd: str, email: str) -> None:
    vt = workspace_bridge.verify(mint(legacy_oidc(hd=hd, email=email)))
    assert vt.email_verified is True


# -- rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        "http://accounts.google.com",
        "https://accounts.google.com/",
        "accounts.google.com/",
        "https://ACCOUNTS.google.com",
        "https://accounts.google.com:443",
    ],
)
def test_other_issuer_spellings_are_untrusted(bridge: Bridge, mint: Any, iss: str, mode: Mode) -> None:
    rejects(bridge, mint(sign_in_with_google(iss=iss)), UntrustedIssuer, "untrusted_issuer", mode)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "555-other.apps.googleusercontent.com", "azp": None},
        {"aud": [PI, "555-other.apps.googleusercontent.com"]},
        {"aud": None},
        {"azp": "555-other.apps.googleusercontent.com"},  # azp checked even with a single aud
    ],
)
def test_audience_and_authorized_party(
    bridge: Bridge, mint: Any, overrides: dict[str, Any], mode: Mode
) -> None:
    rejects(bridge, mint(sign_in_with_google(**overrides)), InvalidAudience, "invalid_audience", mode)


def test_azp_must_be_a_string(bridge: Bridge, mint: Any) -> None:
    error = rejects(bridge, mint(sign_in_with_google(azp=[PI])), InvalidClaim, "invalid_claim")
    assert error.claim == "azp"


@pytest.mark.parametrize(
    "overrides",
    [
        {"hd": None, "email": "x@example.com"},  # consumer account with a look-alike address
        {"hd": "other.com", "email": "x@example.com"},  # check hd, not the email suffix
        {"hd": "example.com.evil.com"},
        {"hd": ["example.com"]},
    ],
)
def test_hosted_domain_rejections(
    workspace_bridge: Bridge, mint: Any, overrides: dict[str, Any], mode: Mode
) -> None:
    error = rejects(
        workspace_bridge, mint(legacy_oidc(**overrides)), InvalidClaim, "hosted_domain_not_allowed", mode
    )
    assert error.claim == "hd"


@pytest.mark.parametrize("alg", ["ES256", "PS256", "RS512"])
def test_rs256_only(bridge: Bridge, mint: Any, alg: str) -> None:
    rejects(bridge, mint(sign_in_with_google(), alg=alg), DisallowedAlgorithm, "disallowed_algorithm")


@pytest.mark.parametrize("typ", ["at+jwt", "logout+jwt"])
def test_only_id_tokens(bridge: Bridge, mint: Any, typ: str) -> None:
    rejects(bridge, mint(sign_in_with_google(), headers={"typ": typ}), WrongTokenType, "wrong_token_type")


def test_real_google_key_set_shape(
    shared_dir: Path, google_key: SigningKey, idp: MockIdP, clock: FrozenClock
) -> None:
    """A real v3 JWK Set (plus our test key) parses; a token naming a real kid fails its signature."""
    files = sorted((shared_dir / "fixtures" / "wellknown" / "google").glob("*.json"))
    assert files
    real = json.loads(files[-1].read_text())["jwks"]["keys"]
    server = KeyServer()
    server.add(GOOGLE_JWKS_URI, lambda: {"keys": [*real, google_key.public_jwk]})
    with server.bridge({"issuers": [ENTRY]}, clock) as bridge:
        assert bridge.verify(idp.mint(sign_in_with_google(), key=google_key)).subject
        forged = idp.mint(sign_in_with_google(), key=google_key, kid=real[0]["kid"])
        rejects(bridge, forged, BadSignature, "bad_signature")
        rejects(bridge, forged, BadSignature, "bad_signature")
    # The fetch, and the one refetch owed to the first failed signature under a known kid
    # (the key may have been replaced); the second forgery is inside the cooldown.
    assert server.count(GOOGLE_JWKS_URI) == 2


# -- configuration ---------------------------------------------------------------------------


def test_profile_defaults() -> None:
    profile = GoogleConfig(client_ids=[PI])
    assert profile.trusted_issuers == ("https://accounts.google.com", "accounts.google.com")
    assert profile.key_source.jwks_uri == "https://www.googleapis.com/oauth2/v3/certs"
    assert (profile.algorithms, profile.token_types, profile.hosted_domains) == (["RS256"], ["id"], None)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"client_ids": []}, "client_ids"),
        ({"client_ids": [""]}, "client_ids"),
        ({"hosted_domains": []}, "hosted_domains"),
        ({"hosted_domains": ["@example.com"]}, "domain"),
        ({"token_types": ["id", "access"]}, "opaque"),
        ({"algorithms": ["RS256", "ES256"]}, "RS256"),
        ({"issuer": "https://accounts.google.com"}, "issuer"),
    ],
)
def test_invalid_configuration(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Bridge.from_dict({"issuers": [{**ENTRY, **entry}]})
    assert info.value.code == "config_error"
    assert fragment in str(info.value)
