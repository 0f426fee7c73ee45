"""A UserInfo response completing a verified id token (OIDC Core §5.3): the bridge's step for
the sign-ins with ``login.userinfo`` (not public: no caller hands claims of its own to a
verification), and the sign-in's reading of the response (``federation.web``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from federation import Bridge, VerifiedToken
from federation.errors import (
    InvalidAudience,
    InvalidToken,
    KeySetUnavailable,
    LoginRefused,
    TokenExpired,
)
from federation.testing import MockIdP
from federation.web import read_userinfo, userinfo_endpoint

pytestmark = pytest.mark.usefixtures("reuse_generated_keys")  # see tests/conftest.py

Verify = Callable[[Bridge, str, Any], VerifiedToken]


@pytest.fixture(params=["sync", "async"])
def verify(request: pytest.FixtureRequest) -> Verify:
    if request.param == "sync":
        return lambda bridge, token, userinfo: bridge._verify_signed_in(token, userinfo)
    return lambda bridge, token, userinfo: asyncio.run(bridge._averify_signed_in(token, userinfo))


def test_userinfo_adds_what_the_id_token_lacks_and_the_identity_reads_it(verify: Verify) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        token = idp.mint(sub="ada")
        plain = bridge.verify(token)
        assert plain.email is None and "name" not in plain.claims
        userinfo = {"sub": "ada", "email": "ada@example.com", "email_verified": True, "name": "Ada"}
        verified = verify(bridge, token, userinfo)
        assert verified.email == "ada@example.com" and verified.email_verified
        assert verified.claims["name"] == "Ada"
        assert verified.identity_key == plain.identity_key
        assert (verified.subject, verified.expires_at, verified.audience) == (
            plain.subject,
            plain.expires_at,
            plain.audience,
        )
        with pytest.raises(TypeError):
            verified.claims["name"] = "Eve"  # type: ignore[index]  # read-only, as always


def test_the_tokens_own_claims_and_all_but_the_standard_ones_are_never_taken(verify: Verify) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        token = idp.mint(sub="ada", name="Ada Lovelace")
        userinfo = {
            "sub": "ada",
            "name": "Mallory",
            "locale": "en-GB",
            "iss": "https://evil.example",
            "ISS": "https://evil.example",
            "aud": "other",
            "exp": 2**40,
            "nonce": "n",
            "acr": "urn:strong",
            "auth_time": 1,
            "sid": "s",
            "tid": "t",
            "oid": "o",
            "hd": "corp.example",
            "xms_edov": True,
            "firebase": {"tenant": "evil"},
            "cognito:groups": ["admin"],
            "realm_access": {"roles": ["admin"]},
            "groups": ["admin"],
            "roles": ["admin"],
            "_claim_names": {"groups": "src1"},
        }
        verified = verify(bridge, token, userinfo)
        assert verified.claims["name"] == "Ada Lovelace"  # the signed claim stands
        assert verified.claims["locale"] == "en-GB"  # a standard claim the token lacks
        assert verified.issuer == idp.issuer and verified.claims["iss"] == idp.issuer
        assert verified.claims["aud"] == idp.audience
        added = set(verified.claims) - set(bridge.verify(token).claims)
        assert added == {"locale"}
        assert verified.groups == () and verified.roles == ()


def test_an_email_is_verified_only_by_its_own_source(verify: Verify) -> None:
    """The token's email with no email_verified, and a response vouching for another address:
    the response's email_verified never qualifies the token's email (a takeover by linking)."""
    idp = MockIdP()
    with idp.bridge() as bridge:
        token = idp.mint(sub="ada", email="victim@corp.example")
        userinfo = {"sub": "ada", "email": "mallory@own.example", "email_verified": True}
        verified = verify(bridge, token, userinfo)
        assert (verified.email, verified.email_verified) == ("victim@corp.example", False)
        assert "email_verified" not in verified.claims
        phone = verify(
            bridge,
            idp.mint(sub="ada", phone_number="+100"),
            {"sub": "ada", "phone_number": "+200", "phone_number_verified": True},
        )
        assert phone.claims["phone_number"] == "+100" and "phone_number_verified" not in phone.claims
        both = verify(bridge, idp.mint(sub="ada"), {"sub": "ada", **userinfo, "phone_number": "+3"})
        assert (both.email, both.email_verified, both.claims["phone_number"]) == (
            "mallory@own.example",
            True,
            "+3",
        )


@pytest.mark.parametrize(
    "provider", ["google", "azure_ad", "cognito", "keycloak", "okta", "firebase", "oidc"]
)
def test_no_provider_claim_from_userinfo_changes_the_identity(provider: str) -> None:
    idp = MockIdP.for_provider(provider)
    with idp.bridge() as bridge:
        token = idp.mint(email="someone@corp.example")
        plain = bridge.verify(token)
        userinfo = {
            "sub": plain.subject,
            "email_verified": True,
            "hd": "corp.example",
            "xms_edov": True,
            "tid": "another-tenant",
            "oid": "another-object",
            "firebase": {"tenant": "evil-tenant", "sign_in_provider": "password"},
            "cognito:groups": ["admin"],
            "cognito:username": "admin",
            "realm_access": {"roles": ["admin"]},
            "resource_access": {"app": {"roles": ["admin"]}},
            "groups": ["admin"],
            "roles": ["admin"],
        }
        assert bridge._verify_signed_in(token, userinfo).identity == plain.identity


def test_a_profile_that_would_key_users_by_a_userinfo_claim_is_refused(
    verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        profile = type(bridge.config.issuers[0])
        generic = profile.identity

        def keyed_by_username(self: Any, token: Any) -> Any:
            identity = generic(self, token)
            name = token.claims.get("preferred_username")
            return identity if name is None else replace(identity, key=(token.issuer, name))

        monkeypatch.setattr(profile, "identity", keyed_by_username)
        with pytest.raises(InvalidToken) as caught:
            verify(bridge, idp.mint(sub="ada"), {"sub": "ada", "preferred_username": "admin"})
        assert caught.value.code == "userinfo_invalid"


@pytest.mark.parametrize("sub", ["mallory", None, 42, ""], ids=["another", "missing", "number", "empty"])
def test_a_userinfo_response_about_someone_else_is_refused(verify: Verify, sub: object) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        userinfo: dict[str, Any] = {"email": "mallory@example.com"}
        if sub is not None:
            userinfo["sub"] = sub
        with pytest.raises(InvalidToken) as caught:
            verify(bridge, idp.mint(sub="ada"), userinfo)
        assert caught.value.code == "userinfo_subject_mismatch"
        assert caught.value.issuer == idp.issuer
        assert "mallory" not in str(caught.value)


def test_every_rule_still_judges_the_tokens_own_claims(verify: Verify) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        with pytest.raises(TokenExpired):
            verify(bridge, idp.mint(sub="ada", expired=True), {"sub": "ada", "exp": 2**40})
        with pytest.raises(InvalidAudience):
            verify(bridge, idp.mint(sub="ada", aud="other"), {"sub": "ada", "aud": idp.audience})


def test_the_identity_key_of_entra_stays_the_tokens(verify: Verify) -> None:
    idp = MockIdP.for_provider("azure_ad")
    with idp.bridge() as bridge:
        token = idp.mint()
        plain = bridge.verify(token)
        verified = verify(
            bridge, token, {"sub": plain.subject, "oid": "another-object", "tid": "another-tenant"}
        )
        assert verified.identity_key == plain.identity_key


def test_userinfo_is_applied_after_a_key_replaced_under_its_kid(verify: Verify) -> None:
    idp = MockIdP()
    with idp.bridge() as bridge:
        bridge.verify(idp.mint(sub="ada"))
        idp.replace_key()
        verified = verify(bridge, idp.mint(sub="ada"), {"sub": "ada", "email": "ada@example.com"})
        assert verified.email == "ada@example.com"
        assert len(idp.requests_to("jwks")) == 2


# -- reading the response ---------------------------------------------------------------------------


def test_read_userinfo_takes_one_strict_json_object() -> None:
    body = b'{"sub":"ada","email":"ada@example.com"}'
    assert read_userinfo(200, "application/json; charset=utf-8", body, "corp", 32) == {
        "sub": "ada",
        "email": "ada@example.com",
    }


@pytest.mark.parametrize(
    ("status", "media", "body", "error", "words"),
    [
        (503, "text/plain", b"down", KeySetUnavailable, "cannot be reached"),
        (401, "application/json", b'{"error":"invalid_token"}', LoginRefused, "refused"),
        (200, "application/jwt", b"e30.e30.", LoginRefused, "signed or encrypted"),
        (200, "text/html", b"<html>", LoginRefused, "not JSON"),
        (302, "text/html", b"", LoginRefused, "HTTP 302"),
        (200, "application/json", b"[1]", LoginRefused, "not a JSON object"),
        (200, "application/json", b'{"sub":"a","sub":"b"}', LoginRefused, "not a JSON object"),
        (200, "application/json", b'{"a":' * 40 + b"1" + b"}" * 40, LoginRefused, "not a JSON object"),
        (200, "application/json", b"\xff", LoginRefused, "not a JSON object"),
    ],
    ids=["5xx", "401", "jwt", "html", "redirect", "array", "repeated-member", "too-deep", "not-utf8"],
)
def test_read_userinfo_refuses_what_is_not_a_userinfo_answer(
    status: int, media: str, body: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as caught:
        read_userinfo(status, media, body, "corp", 32)
    assert words in str(caught.value)
    expected = "provider_unavailable" if error is KeySetUnavailable else "provider_error"
    assert getattr(caught.value, "code", None) == expected


def test_a_provider_without_a_userinfo_endpoint_cannot_complete_a_userinfo_sign_in() -> None:
    assert userinfo_endpoint({"userinfo_endpoint": "https://idp.example/userinfo"}) == (
        "https://idp.example/userinfo"
    )
    for metadata in ({}, {"userinfo_endpoint": ""}, {"userinfo_endpoint": 7}):
        with pytest.raises(LoginRefused) as caught:
            userinfo_endpoint(metadata)
        assert caught.value.code == "provider_error"
        assert "login.userinfo" in str(caught.value)


def test_the_access_token_goes_to_a_userinfo_endpoint_over_tls_only() -> None:
    loopback = {"userinfo_endpoint": "http://127.0.0.1:3901/me"}
    assert userinfo_endpoint(loopback, allow_loopback_http=True) == "http://127.0.0.1:3901/me"
    for metadata, allow in (
        (loopback, False),
        ({"userinfo_endpoint": "http://idp.example/userinfo"}, True),
        ({"userinfo_endpoint": "http://127.1/userinfo"}, True),  # not a standard loopback spelling
        ({"userinfo_endpoint": "ftp://idp.example/userinfo"}, True),
    ):
        with pytest.raises(LoginRefused) as caught:
            userinfo_endpoint(metadata, allow_loopback_http=allow)
        assert "not an https URL" in str(caught.value)
