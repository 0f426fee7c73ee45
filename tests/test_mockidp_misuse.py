"""MockIdP refuses misuse with errors that say what to do instead."""

from __future__ import annotations

import base64
import json

import pytest

from federation.testing import MockIdP, generate_signing_key


def test_an_unknown_provider_lists_the_shipped_ones_and_suggests_the_closest() -> None:
    with pytest.raises(LookupError) as caught:
        MockIdP.for_provider("azure")
    message = str(caught.value)
    assert "did you mean 'azure_ad'?" in message
    for name in ("cognito", "okta", "keycloak", "google", "firebase", "oidc"):
        assert name in message


def test_an_unknown_keyword_of_for_provider_names_the_accepted_ones() -> None:
    with pytest.raises(TypeError) as caught:
        MockIdP.for_provider("cognito", pool_id="us-east-1_abc")
    message = str(caught.value)
    assert "'cognito'" in message and "pool_id" in message
    assert "user_pool_id" in message and "client_id" in message and "clock" in message


def test_mint_takes_the_kid_of_one_of_the_mocks_keys() -> None:
    idp = MockIdP()
    other = idp.rotate_keys(keep_old=True)
    old = idp.keys[0]
    token = idp.mint(key=old.kid)
    segment = token.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["kid"] == old.kid
    with idp.bridge() as bridge:
        assert bridge.verify(token).key_id == old.kid
        assert bridge.verify(idp.mint(key=other.kid)).key_id == other.kid
    assert idp.sign_raw(b'{"alg":"RS256"}', b"{}", key=old.kid).count(".") == 2


def test_mint_refuses_a_kid_it_does_not_have_and_other_key_types() -> None:
    idp = MockIdP()
    with pytest.raises(KeyError, match="some-kid"):
        idp.mint(key="some-kid")
    with pytest.raises(TypeError, match="SigningKey"):
        idp.mint(key=42)  # type: ignore[arg-type]
    foreign = generate_signing_key("RS256")
    assert idp.mint(key=foreign).count(".") == 2  # a key object still signs (a forger's)


def test_removing_an_unknown_key_is_an_error() -> None:
    idp = MockIdP()
    with pytest.raises(KeyError, match="nope"):
        idp.remove_key("nope")
    kid = idp.key_for().kid
    idp.remove_key(kid)
    assert idp.jwks() == {"keys": []}
    with pytest.raises(KeyError, match=kid):
        idp.remove_key(kid)  # already gone


def test_replace_key_keeps_the_kid_and_swaps_the_key_and_refuses_thumbprint_kids() -> None:
    idp = MockIdP.for_provider("cognito")  # two key pairs: id and access tokens
    before = [dict(k) for k in idp.jwks()["keys"]]
    access = idp.key_for(token_type="access")
    new = idp.replace_key()
    after = idp.jwks()["keys"]
    assert [k["kid"] for k in after] == [k["kid"] for k in before]
    changed = [k["kid"] for k, b in zip(after, before, strict=True) if k != b]
    assert changed == [new.kid]
    assert idp.key_for() is new and idp.key_for(token_type="access") is access
    with pytest.raises(ValueError, match="rotate_keys"):
        MockIdP.for_provider("azure_ad").replace_key()


def test_an_issuer_must_be_an_http_url() -> None:
    for issuer in ("login.example.test", "ftp://login.example.test", "https://", ""):
        with pytest.raises(ValueError, match="issuer must be an https"):
            MockIdP(issuer)
    assert MockIdP("http://localhost:8080/realms/acme").jwks_uri == "http://localhost:8080/jwks"
