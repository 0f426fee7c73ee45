"""RFC 7520 "JOSE Cookbook" examples (docs/security.md, "External test vectors").

Positive: the compact asymmetric examples (4.1 RS256, 4.2 PS384, 4.3 ES512,
RFC 8037 EdDSA) verify through the library's signature path with the public
part of the example's key, allowing exactly the example's algorithm, and give
back the exact payload; flipping any segment breaks them. Negative, for an
issuer configured with a key set: HMAC (4.4), detached content (4.5), every
JSON serialisation (4.1-4.8), RFC 7797 unencoded payloads, every JWE and the
nested example; refused both at the JWS level and by a full bridge (NO-IO).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import security_vectors as sv
from security_support import Net, b64u, base_claims, expect_reject, jdump, verify_jws

from federation import Bridge
from federation._rfc7517 import UnusableKey, import_jwk, import_jwks
from federation.errors import DisallowedAlgorithm, InvalidToken, MalformedToken
from federation.testing import MockIdP

Fresh = Callable[..., Bridge]
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _positives() -> list[str]:
    return list(sv.COOKBOOK_POSITIVE) if sv.present() else []


def _negatives() -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    return sv.cookbook_negatives() if sv.present() else []


@pytest.mark.parametrize("path", _positives() or [None], ids=lambda p: p or "vectors-missing")
def test_cookbook_signed_examples_verify(shared_dir: Path, path: str | None) -> None:
    assert path is not None
    data = sv.cookbook(path)
    key = data["input"]["key"]
    if key.get("kty") == "RSA":
        assert import_jwk(sv.public_part(key)).public_key.key_size >= 2048  # type: ignore[union-attr]
    payload = verify_jws(
        data["output"]["compact"], {"keys": [sv.public_part(key)]}, algorithms=[data["input"]["alg"]]
    )
    assert payload == data["input"]["payload"].encode()


@pytest.mark.parametrize("path", _positives() or [None], ids=lambda p: p or "vectors-missing")
def test_cookbook_signed_examples_refuse_other_algorithms(shared_dir: Path, path: str | None) -> None:
    assert path is not None
    data = sv.cookbook(path)
    others = [a for a in ("RS256", "PS384", "ES512", "EdDSA") if a != data["input"]["alg"]]
    with pytest.raises(DisallowedAlgorithm):
        verify_jws(
            data["output"]["compact"], {"keys": [sv.public_part(data["input"]["key"])]}, algorithms=others
        )


def _flip(segment: str, at: int) -> str:
    i = _ALPHABET.index(segment[at])
    return segment[:at] + _ALPHABET[i ^ 0b010000] + segment[at + 1 :]


@pytest.mark.parametrize("path", _positives() or [None], ids=lambda p: p or "vectors-missing")
def test_cookbook_tampered_examples_are_rejected(shared_dir: Path, path: str | None) -> None:
    assert path is not None
    data = sv.cookbook(path)
    jwks = {"keys": [sv.public_part(data["input"]["key"])]}
    parts = data["output"]["compact"].split(".")
    for index in range(3):
        for at in (0, len(parts[index]) // 2, len(parts[index]) - 2):
            tampered = list(parts)
            tampered[index] = _flip(parts[index], at)
            with pytest.raises(InvalidToken):
                verify_jws(".".join(tampered), jwks)


@pytest.mark.parametrize("item", _negatives() or [None], ids=lambda i: i[0] if i else "vectors-missing")
def test_cookbook_negative_examples_are_rejected(
    shared_dir: Path,
    fresh: Fresh,
    net: Net,
    item: tuple[str, str, dict] | None,  # type: ignore[type-arg]
) -> None:
    assert item is not None
    id_, token, jwks = item
    expected = (
        DisallowedAlgorithm if id_ == "jws/4_4.hmac-sha2_integrity_protection:compact" else MalformedToken
    )
    with pytest.raises(expected):
        verify_jws(token, jwks)
    expect_reject(lambda: fresh().verify(token), InvalidToken)
    assert net.requests == []


def test_cookbook_hmac_key_cannot_sign_tokens_for_a_jwks_issuer(
    shared_dir: Path, fresh: Fresh, net: Net, idp: MockIdP
) -> None:
    """4.4's HMAC key signing a real claim set for our issuer: refused in routing, NO-IO."""
    key = sv.cookbook("jws/4_4.hmac-sha2_integrity_protection.json")["input"]["key"]
    secret = __import__("base64").urlsafe_b64decode(key["k"] + "==")
    signing_input = f"{b64u(jdump({'alg': 'HS256', 'kid': key['kid']}))}.{b64u(jdump(base_claims(idp)))}"
    token = signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    expect_reject(lambda: fresh().verify(token), DisallowedAlgorithm, "disallowed_algorithm")
    assert net.requests == []


@pytest.mark.parametrize(
    "path,usable",
    [
        ("jwk/3_1.ec_public_key.json", True),
        ("jwk/3_2.ec_private_key.json", False),
        ("jwk/3_3.rsa_public_key.json", True),
        ("jwk/3_4.rsa_private_key.json", False),
        ("jwk/3_5.symmetric_key_mac_computation.json", False),
        ("jwk/3_6.symmetric_key_encryption.json", False),
    ],
)
def test_cookbook_jwk_import(shared_dir: Path, path: str, usable: bool) -> None:
    """Public keys import; private (KEY-08) and symmetric (KEY-07) keys never do."""
    jwk = sv.cookbook(path)
    if usable:
        key = import_jwk(jwk)
        assert key.kid == jwk["kid"]
    else:
        with pytest.raises(UnusableKey):
            import_jwk(jwk)
        keyset, warnings = import_jwks(
            {"keys": [jwk, sv.cookbook("jwk/3_1.ec_public_key.json")]}, max_keys=100
        )
        assert len(keyset) == 1 and len(warnings) == 1
        assert json.dumps(jwk.get("d", jwk.get("k", "")))[1:-1] not in " ".join(warnings)
