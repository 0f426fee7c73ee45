"""OIDC-01, -02, -10, -11, -12, -13: generic federation attacks (catalogue: docs/security.md).

Provider-specific rows (OIDC-03..09) belong to the provider profiles; OIDC-10's sign-in
binding and OIDC-13 (at_hash/c_hash) are the browser sign-in's checks
(``federation.web.check_id_token``), also tested through the login service in
tests/web/test_service.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from security_support import Net, b64u, base_claims, expect_reject, hdr, jdump, raw_token, signed

from federation import Bridge
from federation.errors import (
    BadSignature,
    ConfigError,
    DisallowedAlgorithm,
    InvalidAudience,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import MockIdP, SigningKey

Fresh = Callable[..., Bridge]


@pytest.fixture
def rs(idp: MockIdP) -> SigningKey:
    return idp.key_for("RS256")


def test_oidc_01_token_of_another_client_of_the_same_idp(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    for typ in ("JWT", "at+jwt"):
        token = signed(hdr(rs, typ=typ), base_claims(idp, aud="client-456", azp="client-456"), rs)
        expect_reject(lambda t=token: bridge.verify(t), InvalidAudience, "invalid_audience")


def test_oidc_02_access_token_to_an_id_token_validator(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh(token_types=["id"])
    explicit = signed(hdr(rs, typ="at+jwt"), base_claims(idp, scope="openid api"), rs)
    implicit = signed(hdr(rs), base_claims(idp, scope="openid api", client_id=idp.audience), rs)  # no at+jwt
    for token in (explicit, implicit):
        expect_reject(lambda t=token: bridge.verify(t), WrongTokenType, "wrong_token_type")


def test_oidc_02_id_token_to_an_access_token_validator(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh(token_types=["access"])
    id_token = signed(hdr(rs), base_claims(idp, nonce="n-1"), rs)
    expect_reject(lambda: bridge.verify(id_token), WrongTokenType, "wrong_token_type")


def test_oidc_02_api_audience_is_not_the_client(fresh: Fresh, idp: MockIdP, rs: SigningKey) -> None:
    """An access token for an API (aud = API id) is not for a client that trusts only its client id."""
    token = signed(hdr(rs, typ="at+jwt"), base_claims(idp, aud="https://api.test", scope="api"), rs)
    expect_reject(lambda: fresh().verify(token), InvalidAudience, "invalid_audience")


def test_oidc_10a_issuer_a_claimed_but_signed_by_b(
    bridges: Any, idp: MockIdP, idp_b: MockIdP, rs: SigningKey
) -> None:
    net = Net(idp, idp_b)
    bridge = bridges({"issuers": [idp.issuer_config(), idp_b.issuer_config()]}, net)
    kb = idp_b.key_for("RS256")
    expect_reject(lambda: bridge.verify(signed(hdr(kb), base_claims(idp), kb)), UnknownKey, "unknown_key")
    expect_reject(lambda: bridge.verify(signed(hdr(rs), base_claims(idp), kb)), BadSignature, "bad_signature")
    assert bridge.verify(signed(hdr(kb), base_claims(idp_b), kb)).issuer == idp_b.issuer  # control


def test_oidc_10b_issuer_binding_of_a_login_transaction(bridges: Any, idp: MockIdP, idp_b: MockIdP) -> None:
    """The bridge returns the *configured* issuer that matched, for a caller's own login
    transaction to compare with the one it started with, and a bridge configured for ISS_A
    alone refuses ISS_B. The shipped sign-in flows compare it themselves (test_oidc_10c)."""
    kb = idp_b.key_for("RS256")
    token_b = signed(hdr(kb), base_claims(idp_b), kb)
    both = bridges({"issuers": [idp.issuer_config(), idp_b.issuer_config()]}, Net(idp, idp_b))
    assert both.verify(token_b).issuer == "https://idp-b.test" != idp.issuer
    net = Net(idp, idp_b)
    only_a = bridges({"issuers": [idp.issuer_config()]}, net)
    expect_reject(lambda: only_a.verify(token_b), UntrustedIssuer, "untrusted_issuer")
    assert net.requests == []


def test_oidc_11_single_provider_fallback(fresh: Fresh, net: Net, idp: MockIdP, rs: SigningKey) -> None:
    bridge = fresh()
    for iss in ("https://attacker.test", "", "https://idp.test.attacker.test"):
        token = signed(hdr(rs), base_claims(idp, iss=iss), rs)  # a key that *is* in JWKS_A
        expect_reject(lambda t=token: bridge.verify(t), UntrustedIssuer, "untrusted_issuer")
    assert net.requests == []


@pytest.mark.parametrize("issuer", ["", None])
def test_oidc_11_empty_configured_issuer_is_a_config_error(idp: MockIdP, issuer: Any) -> None:
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": [idp.issuer_config(issuer=issuer)]})
    with pytest.raises(ConfigError):
        Bridge.from_dict({"issuers": []})


def test_oidc_12_id_token_signed_with_the_client_secret(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    secret = b"client-secret-of-my-client-0123456789abcdef"
    signing_input = f"{b64u(jdump({'alg': 'HS256', 'typ': 'JWT'}))}.{b64u(jdump(base_claims(idp)))}"
    token = signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    expect_reject(lambda: fresh().verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    assert net.requests == []


def test_oidc_12_unsigned_id_token(fresh: Fresh, net: Net, idp: MockIdP) -> None:
    expect_reject(
        lambda: fresh().verify(raw_token({"alg": "none", "typ": "JWT"}, base_claims(idp))),
        DisallowedAlgorithm,
        "disallowed_algorithm",
    )
    assert net.requests == []


def test_oidc_12_hs256_cannot_be_enabled_per_client(idp: MockIdP) -> None:
    """Pinned: OIDC allows client-secret HS256 id tokens; this library never does (no secret option)."""
    for extra in ({"algorithms": ["HS256"]}, {"client_secret": "s"}):
        with pytest.raises(ConfigError):
            Bridge.from_dict({"issuers": [idp.issuer_config(**extra)]})


def _sign_in_of(bridge: Bridge, name: str) -> Any:
    from federation.web import sign_in_clients

    return sign_in_clients(bridge)[name]


def _with_login(idp: MockIdP, name: str) -> dict[str, Any]:
    return {**idp.issuer_config(), "name": name, "login": {"client_id": idp.audience}}


def test_oidc_10c_a_sign_in_takes_only_its_own_issuers_id_token(
    bridges: Any, idp: MockIdP, idp_b: MockIdP
) -> None:
    """A token endpoint of ISS_A answering with an id token of ISS_B (which the bridge trusts
    too, for the same client id, with the nonce ISS_A was sent) signs nobody in."""
    from federation.errors import InvalidToken
    from federation.web import check_id_token

    both = bridges({"issuers": [_with_login(idp, "a"), _with_login(idp_b, "b")]}, Net(idp, idp_b))
    kb = idp_b.key_for("RS256")
    token_b = both.verify(signed(hdr(kb), base_claims(idp_b, nonce="n-1"), kb))
    check_id_token(token_b, "n-1", _sign_in_of(both, "b"))
    with pytest.raises(InvalidToken) as caught:
        check_id_token(token_b, "n-1", _sign_in_of(both, "a"))
    assert caught.value.code == "issuer_mismatch"


def test_oidc_13_half_hashes_are_oidc_cores(idp: MockIdP) -> None:
    from federation.web._signin import half_hash

    # OIDC Core 1.0 §A.3 and §A.4: an access token and a code with their RS256 hashes.
    assert half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"
    code = "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
    assert half_hash(code, "RS256") == "LDktKdoQak3Pk0cnXxCltA"
    for alg, name in (("PS384", "sha384"), ("ES512", "sha512"), ("EdDSA", "sha512"), ("Ed25519", "sha512")):
        digest = hashlib.new(name, b"token").digest()
        assert half_hash("token", alg) == b64u(digest[: len(digest) // 2])
    assert half_hash("tökén", "RS256") is None  # not ASCII: no value can match it
    assert half_hash("token", "HS256") is None and half_hash("token", "ES256K") is None


@pytest.mark.parametrize("claim", ["at_hash", "c_hash"])
def test_oidc_13_an_id_token_not_bound_to_its_access_token_or_code(
    bridges: Any, idp: MockIdP, rs: SigningKey, claim: str
) -> None:
    from federation.errors import InvalidToken
    from federation.web import check_id_token
    from federation.web._signin import half_hash

    bridge = bridges({"issuers": [_with_login(idp, "a")]}, Net(idp))
    client = _sign_in_of(bridge, "a")
    answer = {"access_token": "the-access-token", "token_type": "Bearer"}
    code = "the-code"
    bound = half_hash(answer["access_token"] if claim == "at_hash" else code, "RS256")
    assert bound is not None
    for value in (bound, None):  # bound, or absent (optional in the code flow): accepted
        extra = {claim: value} if value is not None else {}
        token = bridge.verify(signed(hdr(rs), base_claims(idp, nonce="n", **extra), rs))
        check_id_token(token, "n", client, answer=answer, code=code)
    for wrong in (half_hash("another", "RS256"), bound[:-1], bound + "A", 17, "", [bound]):
        token = bridge.verify(signed(hdr(rs), base_claims(idp, nonce="n", **{claim: wrong}), rs))
        with pytest.raises(InvalidToken) as caught:
            check_id_token(token, "n", client, answer=answer, code=code)
        assert caught.value.code == f"{claim}_mismatch"
        assert "the-access-token" not in str(caught.value) and "the-code" not in str(caught.value)
