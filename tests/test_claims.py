"""The registered-claim rules and token kinds, through ``Bridge.verify`` and
``Bridge.averify``: ``exp``/``nbf``/``iat`` with leeway, ``aud``/``azp``,
``sub``, the ``typ``-based token kind and the per-issuer token-type allow-list,
error precedence, the :class:`VerifiedToken` result, and what error messages
must never contain.

The default leeway is 60 s; the mock issuer's tokens live 300 s from the
frozen clock's ``now``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from federation import Bridge, VerifiedToken
from federation.errors import (
    BadSignature,
    FederationError,
    InvalidAudience,
    InvalidClaim,
    InvalidToken,
    IssuedInFuture,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UntrustedIssuer,
    WrongTokenType,
)
from federation.testing import FrozenClock, MockIdP, SigningKey, generate_signing_key

Verify = Callable[[Bridge, str], VerifiedToken]
LEEWAY = 60
NOW = 1_800_000_000


@pytest.fixture(params=["sync", "async"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """``verify(bridge, token)`` through ``Bridge.verify`` or ``Bridge.averify``."""
    if request.param == "sync":
        return lambda bridge, token: bridge.verify(token)
    return lambda bridge, token: asyncio.run(bridge.averify(token))


@pytest.fixture(scope="module")
def foreign_rsa() -> SigningKey:
    """An RSA key pair that no issuer publishes."""
    return generate_signing_key("RS256", kid="foreign-rsa")


@pytest.fixture(scope="module")
def _module_idp() -> Iterator[tuple[MockIdP, Bridge, FrozenClock]]:
    clock = FrozenClock(NOW)
    idp = MockIdP(issuer="https://idp.test", audience="my-client", algorithms=["ES256"], clock=clock)
    bridge = idp.bridge()
    yield idp, bridge, clock
    bridge.close()


@pytest.fixture
def shared(_module_idp: tuple[MockIdP, Bridge, FrozenClock]) -> tuple[MockIdP, Bridge]:
    """Like the ``idp`` and ``bridge`` fixtures (default settings, clock at ``NOW``), but
    one key generation for the whole module: for the many-parameter tests that change
    neither the issuer's keys nor the bridge. The clock and the request log are reset."""
    idp, bridge, clock = _module_idp
    clock.set(NOW)
    idp.requests.clear()
    return idp, bridge


def rejected(verify: Verify, bridge: Bridge, token: str, cls: type[InvalidToken], code: str) -> InvalidToken:
    """Assert that ``token`` is rejected with exactly ``cls`` and ``code``; return the error."""
    with pytest.raises(InvalidToken) as info:
        verify(bridge, token)
    assert type(info.value) is cls, f"expected {cls.__name__}, got {type(info.value).__name__}: {info.value}"
    assert info.value.code == code
    return info.value


def invalid_claim(verify: Verify, bridge: Bridge, token: str, claim: str) -> InvalidClaim:
    err = rejected(verify, bridge, token, InvalidClaim, "invalid_claim")
    assert isinstance(err, InvalidClaim)
    assert err.claim == claim
    assert err.issuer == "https://idp.test"
    return err


def mint_json(idp: MockIdP, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
    """Sign exactly ``claims`` (JSON ``null`` included, which ``mint`` would drop)."""
    key = idp.key_for("RS256")
    hdr = {"alg": "RS256", "kid": key.kid, "typ": "JWT", **(header or {})}
    return idp.sign_raw(json.dumps(hdr).encode(), json.dumps(claims).encode(), key)


def with_claims(idp: MockIdP, **changes: Any) -> str:
    """The mock's default claims with ``changes`` applied verbatim (None becomes JSON null)."""
    return mint_json(idp, {**idp.claims(), **changes})


def without(idp: MockIdP, *names: str, **changes: Any) -> str:
    claims = {**idp.claims(), **changes}
    for name in names:
        del claims[name]
    return mint_json(idp, claims)


# -- exp --------------------------------------------------------------------------------------------


def test_exp_is_required(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    invalid_claim(verify, bridge, without(idp, "exp"), "exp")


def test_expired_token_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    err = rejected(verify, bridge, idp.mint(expired=True), TokenExpired, "expired")
    assert err.issuer == idp.issuer


def test_exp_boundary_with_leeway(verify: Verify, idp: MockIdP, bridge: Bridge, clock: FrozenClock) -> None:
    token = idp.mint(lifetime=300)  # exp = NOW + 300
    clock.advance(300 + LEEWAY - 1)
    assert verify(bridge, token).subject == "user-1"  # within the leeway
    clock.advance(1)  # now == exp + leeway: "now MUST be before exp" (plus leeway)
    rejected(verify, bridge, token, TokenExpired, "expired")


def test_exp_exactly_now_is_accepted_only_thanks_to_leeway(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    strict = make_bridge(leeway=0)
    rejected(verify, strict, with_claims(idp, exp=NOW), TokenExpired, "expired")
    assert verify(strict, with_claims(idp, exp=NOW + 1)).subject == "user-1"
    lenient = make_bridge()
    assert verify(lenient, with_claims(idp, exp=NOW)).subject == "user-1"


def test_fractional_exp_is_compared_numerically(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, with_claims(idp, exp=NOW + 0.5))
    assert vt.expires_at == datetime.fromtimestamp(NOW + 0.5, tz=timezone.utc)
    rejected(verify, bridge, with_claims(idp, exp=NOW - LEEWAY - 0.5), TokenExpired, "expired")


@pytest.mark.parametrize("exp", [0, -1, -(10**9)], ids=["zero", "minus-one", "negative"])
def test_exp_in_the_distant_past_is_expired(verify: Verify, shared: tuple[MockIdP, Bridge], exp: int) -> None:
    idp, bridge = shared
    rejected(verify, bridge, with_claims(idp, exp=exp, iat=exp - 10), TokenExpired, "expired")


@pytest.mark.parametrize(
    "value",
    [str(NOW + 300), "", True, False, None, [NOW + 300], {"t": NOW + 300}],
    ids=["numeric-string", "empty-string", "true", "false", "null", "array", "object"],
)
def test_exp_of_the_wrong_type_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], value: object
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, exp=value), "exp")


@pytest.mark.parametrize(
    "value",
    [10**20, 1e308, 253402300800, 2**63, 10**400],
    ids=["1e20-int", "1e308-float", "year-10000", "2^63", "400-digits"],
)
def test_huge_exp_is_an_invalid_claim(verify: Verify, shared: tuple[MockIdP, Bridge], value: object) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, exp=value), "exp")


def test_largest_representable_exp_is_accepted(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, with_claims(idp, exp=253402300799))  # 9999-12-31T23:59:59Z
    assert vt.expires_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


# -- nbf --------------------------------------------------------------------------------------------


def test_nbf_beyond_leeway_is_not_yet_valid(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    err = rejected(verify, bridge, idp.mint(nbf=NOW + LEEWAY + 1), TokenNotYetValid, "not_yet_valid")
    assert err.issuer == idp.issuer


@pytest.mark.parametrize("offset", [-10, 0, LEEWAY - 1, LEEWAY])
def test_nbf_within_leeway_is_accepted(verify: Verify, shared: tuple[MockIdP, Bridge], offset: int) -> None:
    idp, bridge = shared
    assert verify(bridge, idp.mint(nbf=NOW + offset)).claims["nbf"] == NOW + offset


def test_not_yet_valid_token_becomes_valid(
    verify: Verify, idp: MockIdP, bridge: Bridge, clock: FrozenClock
) -> None:
    token = idp.mint(nbf=NOW + 120)
    rejected(verify, bridge, token, TokenNotYetValid, "not_yet_valid")
    clock.advance(120 - LEEWAY)
    assert verify(bridge, token).subject == "user-1"


@pytest.mark.parametrize("value", ["0", True, None, [NOW]], ids=["string", "bool", "null", "array"])
def test_nbf_of_the_wrong_type_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], value: object
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, nbf=value), "nbf")


def test_nbf_after_exp_is_an_invalid_claim(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    invalid_claim(verify, bridge, with_claims(idp, exp=NOW + 300, nbf=NOW + 301), "nbf")


# -- iat --------------------------------------------------------------------------------------------


def test_iat_in_the_future_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    err = rejected(verify, bridge, idp.mint(iat=NOW + LEEWAY + 1), IssuedInFuture, "issued_in_future")
    assert err.issuer == idp.issuer
    rejected(verify, bridge, idp.mint(iat=NOW + 3600, lifetime=7200), IssuedInFuture, "issued_in_future")


def test_iat_within_leeway_is_accepted(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    assert verify(bridge, idp.mint(iat=NOW + LEEWAY)).claims["iat"] == NOW + LEEWAY


def test_id_tokens_require_iat(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    invalid_claim(verify, bridge, without(idp, "iat"), "iat")


def test_access_tokens_do_not_require_iat(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, without(idp, "iat", scope="read"))
    assert vt.token_type == "access"


@pytest.mark.parametrize("value", [str(NOW), False, None], ids=["string", "bool", "null"])
def test_iat_of_the_wrong_type_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], value: object
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, iat=value), "iat")


def test_iat_after_exp_is_an_invalid_claim(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    # Issued after it expired, both within the leeway of now: no issuer mints that.
    invalid_claim(verify, bridge, with_claims(idp, iat=NOW + 30, exp=NOW + 29), "iat")
    assert verify(bridge, with_claims(idp, iat=NOW + 30, exp=NOW + 30)).claims["iat"] == NOW + 30


# -- jti --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [5, None, ["a"], {"a": 1}, True], ids=["number", "null", "array", "object", "bool"]
)
def test_jti_of_the_wrong_type_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], value: object
) -> None:
    idp, bridge = shared  # RFC 7519 §4.1.7: a case-sensitive string
    invalid_claim(verify, bridge, with_claims(idp, jti=value), "jti")


def test_string_jti_is_accepted(verify: Verify, shared: tuple[MockIdP, Bridge]) -> None:
    idp, bridge = shared
    assert verify(bridge, idp.mint(jti="ID.a1")).claims["jti"] == "ID.a1"


# -- aud and azp ------------------------------------------------------------------------------------


def test_missing_audience_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    err = rejected(verify, bridge, idp.mint(aud=None), InvalidAudience, "invalid_audience")
    assert err.issuer == idp.issuer


@pytest.mark.parametrize(
    "aud", ["other-client", "MY-CLIENT", "my-clien", "my-client-2", " my-client", "my-client ", ""]
)
def test_wrong_audience_is_rejected(verify: Verify, shared: tuple[MockIdP, Bridge], aud: str) -> None:
    idp, bridge = shared
    rejected(verify, bridge, idp.mint(aud=aud), InvalidAudience, "invalid_audience")


def test_audience_list_containing_ours_is_accepted_for_access_tokens(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    vt = verify(bridge, idp.mint(aud=["https://api.other", "my-client"], scope="read"))
    assert vt.token_type == "access"
    assert vt.audience == ("https://api.other", "my-client")


def test_audience_list_without_ours_is_rejected(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    token = idp.mint(aud=["a", "b"], scope="read")
    rejected(verify, bridge, token, InvalidAudience, "invalid_audience")


def test_id_token_with_an_extra_untrusted_audience_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    assert verify(bridge, idp.mint(aud=["my-client"])).audience == ("my-client",)
    token = idp.mint(aud=["my-client", "https://untrusted.example"], azp="my-client")
    rejected(verify, bridge, token, InvalidAudience, "invalid_audience")


@pytest.mark.parametrize("aud", [1, 1.5, True, {"my-api": 1}, [1, "my-api"], [], [None]])
@pytest.mark.parametrize("provider", ["cognito", "keycloak", "okta", "azure_ad", "google", "firebase"])
def test_an_aud_of_the_wrong_shape_is_refused_by_every_profile(
    verify: Verify, provider: str, aud: Any
) -> None:
    """RFC 7519 §4.1.3: a string or an array of strings, also where a profile binds the token
    by another claim (Cognito's access tokens, by ``client_id``): before, such a profile let
    a number through to a TypeError and took a JSON object's keys as audiences."""
    idp = MockIdP.for_provider(provider, clock=FrozenClock(NOW))
    bridge = idp.bridge()
    try:
        kinds = ["id", "access"] if idp.shape.jwt_access_tokens else ["id"]
        for kind in kinds:
            token = idp.mint({"aud": aud}, token_type=kind)
            rejected(verify, bridge, token, InvalidAudience, "invalid_audience")
    finally:
        bridge.close()


def test_id_token_naming_only_trusted_audiences_is_accepted(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge(issuer={"audiences": ["my-client", "my-other-client"]})
    vt = verify(bridge, idp.mint(aud=["my-client", "my-other-client"], azp="my-client"))
    assert (vt.token_type, vt.audience) == ("id", ("my-client", "my-other-client"))


@pytest.mark.parametrize(
    "aud",
    [[], [[]], [["my-client"]], {"my-client": True}, 123, None, [None], [1, "my-client"]],
    ids=["empty", "nested-empty", "nested", "object", "number", "null", "list-null", "list-int"],
)
def test_audience_of_the_wrong_shape_is_rejected(
    verify: Verify, shared: tuple[MockIdP, Bridge], aud: object
) -> None:
    idp, bridge = shared
    rejected(verify, bridge, with_claims(idp, aud=aud, scope="read"), InvalidAudience, "invalid_audience")


def test_multi_valued_audience_with_azp_not_configured_is_rejected(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    token = idp.mint(aud=["my-client", "https://api.other"], azp="someone-else", scope="read")
    rejected(verify, bridge, token, InvalidAudience, "invalid_audience")
    ok = idp.mint(aud=["my-client", "https://api.other"], azp="my-client", scope="read")
    assert verify(bridge, ok).claims["azp"] == "my-client"


def test_azp_of_another_client_with_a_single_audience_is_accepted_for_access_tokens(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    # Keycloak-style access tokens: aud is the API, azp the front-end client that asked for it.
    vt = verify(bridge, idp.mint(aud="my-client", azp="frontend-app", scope="read"))
    assert vt.claims["azp"] == "frontend-app"


@pytest.mark.parametrize("azp", [1, ["my-client"], None], ids=["number", "array", "null"])
def test_azp_of_the_wrong_type_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], azp: object
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, azp=azp), "azp")


def test_too_many_audiences_are_rejected(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge(limits={"max_audiences": 3})
    assert verify(bridge, idp.mint(aud=["my-client", "b", "c"], scope="x")).audience[0] == "my-client"
    token = idp.mint(aud=["my-client", "b", "c", "d"], scope="x")
    rejected(verify, bridge, token, InvalidAudience, "invalid_audience")


def test_default_audience_limit_is_fifty(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    many = ["my-client"] + [f"aud-{i}" for i in range(49)]
    assert len(verify(bridge, idp.mint(aud=many, scope="x")).audience) == 50
    rejected(
        verify, bridge, idp.mint(aud=[*many, "one-more"], scope="x"), InvalidAudience, "invalid_audience"
    )


# -- sub --------------------------------------------------------------------------------------------


def test_sub_is_required(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    invalid_claim(verify, bridge, without(idp, "sub"), "sub")


@pytest.mark.parametrize(
    "sub",
    ["", 123, None, [], ["user-1"], {"id": "user-1"}, True, "x" * 256],
    ids=["empty", "number", "null", "empty-array", "array", "object", "bool", "256-chars"],
)
def test_sub_of_the_wrong_type_or_size_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], sub: object
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, with_claims(idp, sub=sub), "sub")


@pytest.mark.parametrize(
    "sub",
    ["user\x00admin", "user\nadmin", "user\r\n", "\x1b[2Juser", "user\x7f", "user\u2028x", "\tuser"],
    ids=["nul", "lf", "crlf", "ansi", "del", "line-separator", "tab"],
)
def test_sub_with_control_characters_is_an_invalid_claim(
    verify: Verify, shared: tuple[MockIdP, Bridge], sub: str
) -> None:
    idp, bridge = shared
    invalid_claim(verify, bridge, idp.mint(sub=sub), "sub")


def test_sub_of_255_characters_is_accepted(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    assert verify(bridge, idp.mint(sub="x" * 255)).subject == "x" * 255


# -- token kinds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/AT+JWT"])
def test_at_jwt_typ_makes_an_access_token(verify: Verify, shared: tuple[MockIdP, Bridge], typ: str) -> None:
    idp, bridge = shared
    assert verify(bridge, idp.mint(headers={"typ": typ})).token_type == "access"


@pytest.mark.parametrize("claim", [{"scope": "read write"}, {"scp": ["read"]}, {"client_id": "svc"}])
def test_oauth_claims_make_an_access_token(
    verify: Verify, shared: tuple[MockIdP, Bridge], claim: dict[str, Any]
) -> None:
    idp, bridge = shared
    assert verify(bridge, idp.mint(**claim)).token_type == "access"


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "application/jwt", None], ids=["JWT", "jwt", "app-jwt", "none"]
)
def test_plain_tokens_are_id_tokens(verify: Verify, shared: tuple[MockIdP, Bridge], typ: str | None) -> None:
    idp, bridge = shared
    assert verify(bridge, idp.mint(headers={"typ": typ})).token_type == "id"


@pytest.mark.parametrize(
    "typ", ["logout+jwt", "application/logout+jwt", "secevent+jwt", "dpop+jwt", "at+jwt2"]
)
def test_other_explicit_types_are_refused(verify: Verify, shared: tuple[MockIdP, Bridge], typ: str) -> None:
    idp, bridge = shared
    rejected(verify, bridge, idp.mint(headers={"typ": typ}), WrongTokenType, "wrong_token_type")


def test_id_only_issuer_refuses_access_tokens(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge(issuer={"token_types": ["id"]})
    assert verify(bridge, idp.mint()).token_type == "id"
    for token in (idp.mint(headers={"typ": "at+jwt"}), idp.mint(scope="read")):
        rejected(verify, bridge, token, WrongTokenType, "wrong_token_type")


def test_access_only_issuer_refuses_id_tokens(
    verify: Verify, idp: MockIdP, make_bridge: Callable[..., Bridge]
) -> None:
    bridge = make_bridge(issuer={"token_types": ["access"]})
    assert verify(bridge, idp.mint(headers={"typ": "at+jwt"})).token_type == "access"
    rejected(verify, bridge, idp.mint(), WrongTokenType, "wrong_token_type")


# -- error precedence -------------------------------------------------------------------------------


def test_expired_and_forged_reports_bad_signature(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    token = idp.mint(expired=True, key=foreign_rsa, kid=idp.key_for("RS256").kid)
    rejected(verify, bridge, token, BadSignature, "bad_signature")


def test_forged_token_with_every_claim_wrong_reports_bad_signature(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    claims = {"iss": idp.issuer, "sub": "", "aud": "other", "exp": "soon", "nbf": NOW + 9999}
    header = json.dumps({"alg": "RS256", "kid": idp.key_for("RS256").kid, "typ": "logout+jwt"}).encode()
    token = idp.sign_raw(header, json.dumps(claims).encode(), foreign_rsa)
    rejected(verify, bridge, token, BadSignature, "bad_signature")


def test_expired_token_with_unknown_kid_reports_unknown_key(
    verify: Verify, idp: MockIdP, bridge: Bridge
) -> None:
    rejected(verify, bridge, idp.mint(expired=True, kid="gone"), UnknownKey, "unknown_key")


def test_untrusted_issuer_wins_over_every_other_problem(
    verify: Verify, idp: MockIdP, bridge: Bridge, foreign_rsa: SigningKey
) -> None:
    token = idp.mint(iss="https://evil.test", expired=True, aud="x", key=foreign_rsa)
    rejected(verify, bridge, token, UntrustedIssuer, "untrusted_issuer")
    assert idp.requests == []


# -- the result -------------------------------------------------------------------------------------


def test_verified_token_fields(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    token = idp.mint(sub="u-42", alg="ES256", email="a@example.com", groups=["admins"], lifetime=120)
    vt = verify(bridge, token)
    assert vt.issuer == "https://idp.test"
    assert vt.subject == "u-42"
    assert vt.provider == "oidc"
    assert vt.token_type == "id"
    assert vt.algorithm == "ES256"
    assert vt.key_id == idp.key_for("ES256").kid
    assert vt.audience == ("my-client",)
    assert isinstance(vt.audience, tuple)
    assert vt.expires_at == datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc)
    assert vt.expires_at.utcoffset() == timedelta(0)
    assert vt.expires_at.tzinfo is timezone.utc
    assert vt.claims["email"] == "a@example.com"
    assert vt.claims["groups"] == ["admins"]
    assert vt.header["alg"] == "ES256"


def test_verified_token_is_read_only(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, idp.mint(sub="u1"))
    with pytest.raises(TypeError):
        vt.claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        del vt.claims["sub"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        vt.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        vt.subject = "admin"  # type: ignore[misc]
    assert vt.claims["sub"] == vt.subject == "u1"


def test_audience_list_becomes_a_tuple(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, idp.mint(aud=["my-client", "api"], azp="my-client", scope="read"))
    assert vt.audience == ("my-client", "api")
    assert isinstance(vt.audience, tuple)


def test_verified_token_repr_does_not_dump_claims(verify: Verify, idp: MockIdP, bridge: Bridge) -> None:
    vt = verify(bridge, idp.mint(email="private@example.com"))
    assert "private@example.com" not in repr(vt)


# -- error messages ---------------------------------------------------------------------------------

SECRET_SUB = "subject-7f3a9c-secret"


def _text(err: FederationError) -> str:
    return " ".join([str(err), repr(err), err.message, *(str(a) for a in err.args)])


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "wrong_audience",
        "bad_signature",
        "unknown_key",
        "untrusted_issuer",
        "wrong_type",
        "sub_control",
        "exp_string",
    ],
)
def test_error_messages_never_contain_the_token_or_the_subject(
    verify: Verify, shared: tuple[MockIdP, Bridge], foreign_rsa: SigningKey, case: str
) -> None:
    idp, bridge = shared
    sub = SECRET_SUB + ("\n" if case == "sub_control" else "")
    tokens: dict[str, Callable[[], str]] = {
        "expired": lambda: idp.mint(sub=sub, expired=True),
        "not_yet_valid": lambda: idp.mint(sub=sub, nbf=NOW + 3600, lifetime=7200),
        "issued_in_future": lambda: idp.mint(sub=sub, iat=NOW + 3600, lifetime=7200),
        "wrong_audience": lambda: idp.mint(sub=sub, aud="aud-" + SECRET_SUB),
        "bad_signature": lambda: idp.mint(sub=sub, key=foreign_rsa, kid=idp.key_for().kid),
        "unknown_key": lambda: idp.mint(sub=sub, kid="kid-" + SECRET_SUB),
        "untrusted_issuer": lambda: idp.mint(sub=sub, iss="https://" + SECRET_SUB + ".test"),
        "wrong_type": lambda: idp.mint(sub=sub, headers={"typ": SECRET_SUB + "+jwt"}),
        "sub_control": lambda: idp.mint(sub=sub),
        "exp_string": lambda: with_claims(idp, sub=sub, exp="exp-" + SECRET_SUB),
    }
    token = tokens[case]()
    with pytest.raises(InvalidToken) as info:
        verify(bridge, token)
    text = _text(info.value)
    assert SECRET_SUB not in text
    for segment in token.split("."):
        assert segment not in text
    assert base64.urlsafe_b64encode(SECRET_SUB.encode()).decode().rstrip("=") not in text
