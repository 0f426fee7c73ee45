"""JWE-*: encrypted tokens where a signed one is expected (catalogue: docs/security.md).

The library is JWS-only. Catalogue NotAJWS -> MalformedToken (``malformed``).
Every JWE is refused before any base64url decoding, key lookup, decryption or
decompression (asserted with a recorder on ``b64url_decode``), with NO-IO on a
fresh bridge. The Wycheproof JWE files and the cookbook JWE examples are the
negative corpus, whatever their label (a valid JWE is still not a JWS).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import security_vectors as sv
from joserfc import jwe
from joserfc.jwk import ECKey, OctKey, RSAKey
from security_support import DecodeRecorder, Net, b64u, base_claims, expect_reject, jdump

from federation import Bridge
from federation.errors import MalformedToken
from federation.testing import MockIdP

Fresh = Callable[..., Bridge]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> DecodeRecorder:
    recorder = DecodeRecorder()
    monkeypatch.setattr("federation._rfc7515.b64url_decode", recorder)
    return recorder


def _refused_undecoded(bridge: Bridge, net: Net, decodes: DecodeRecorder, token: str) -> None:
    before = decodes.calls
    expect_reject(lambda: bridge.verify(token), MalformedToken, "malformed")
    assert decodes.calls == before, "a JWE was base64-decoded"
    assert net.requests == []


def test_jwe_01_jwe_encrypted_to_the_issuers_public_signing_key(
    fresh: Fresh, net: Net, idp: MockIdP, decodes: DecodeRecorder
) -> None:
    """CVE-2023-51774: anyone can encrypt to the IdP's *public* key; that proves nothing."""
    claims = json.dumps(base_claims(idp, sub="admin"))
    # the same public numbers, minus use/alg (joserfc itself refuses a "use":"sig" key)
    drop = ("use", "alg", "kid")
    rsa_pub = RSAKey.import_key({k: v for k, v in idp.key_for("RS256").public_jwk.items() if k not in drop})
    ec_pub = ECKey.import_key({k: v for k, v in idp.key_for("ES256").public_jwk.items() if k not in drop})
    tokens = [
        jwe.encrypt_compact({"alg": "RSA-OAEP", "enc": "A256GCM"}, claims, rsa_pub),
        jwe.encrypt_compact(
            {"alg": "RSA-OAEP-256", "enc": "A128CBC-HS256", "typ": "JWT"},
            claims,
            rsa_pub,
            algorithms=["RSA-OAEP-256", "A128CBC-HS256"],
        ),
        jwe.encrypt_compact({"alg": "ECDH-ES", "enc": "A256GCM"}, claims, ec_pub),
        jwe.encrypt_compact({"alg": "dir", "enc": "A128GCM"}, claims, OctKey.generate_key(128)),
    ]
    bridge = fresh()
    for token in tokens:
        assert token.count(".") == 4
        _refused_undecoded(bridge, net, decodes, token)


def _wycheproof_jwe() -> list[sv.Case]:
    return sv.jwe_cases() if sv.present() else []


@pytest.mark.parametrize("case", _wycheproof_jwe() or [None], ids=lambda c: c.id if c else "vectors-missing")
def test_jwe_01_wycheproof_jwe_corpus(
    shared_dir: Path, fresh: Fresh, net: Net, decodes: DecodeRecorder, case: sv.Case | None
) -> None:
    assert case is not None
    _refused_undecoded(fresh(), net, decodes, case.token)


def _cookbook_jwe() -> list[tuple[str, str]]:
    if not sv.present():
        return []
    out = []
    for id_, token, _jwks in sv.cookbook_negatives():
        path = id_.partition(":")[0]
        if path.startswith(("jwe/", "6.", "curve25519/ecdh-es")):
            out.append((id_, token))
    return out


@pytest.mark.parametrize("item", _cookbook_jwe() or [None], ids=lambda i: i[0] if i else "vectors-missing")
def test_jwe_01_cookbook_jwe_corpus(
    shared_dir: Path, fresh: Fresh, net: Net, decodes: DecodeRecorder, item: tuple[str, str] | None
) -> None:
    assert item is not None
    _refused_undecoded(fresh(), net, decodes, item[1])


def test_jwe_02_decompression_bomb(fresh: Fresh, net: Net, idp: MockIdP, decodes: DecodeRecorder) -> None:
    """~10 MB of "u" deflated to ~10 KB behind zip:DEF: never inflated, never even decoded."""
    bomb = zlib.compress(b'{"sub":"' + b"u" * 10_000_000 + b'"}', 9)
    assert len(bomb) < 16 * 1024
    header = {"alg": "dir", "enc": "A128GCM", "zip": "DEF"}
    token = ".".join([b64u(jdump(header)), "", b64u(bytes(12)), b64u(bomb), b64u(bytes(16))])
    _refused_undecoded(fresh(), net, decodes, token)
    real = jwe.encrypt_compact(
        {"alg": "A128KW", "enc": "A128GCM", "zip": "DEF"}, b"u" * 1_000_000, OctKey.generate_key(128)
    )
    _refused_undecoded(fresh(), net, decodes, real)


def test_jwe_02_cookbook_compressed_example(
    shared_dir: Path, fresh: Fresh, net: Net, decodes: DecodeRecorder
) -> None:
    data = json.loads((shared_dir / "vectors/jose-cookbook/jwe/5_9.compressed_content.json").read_text())
    assert data["input"]["zip"] == "DEF"
    _refused_undecoded(fresh(), net, decodes, data["output"]["compact"])


def test_jwe_03_pbes2_billion_hashes(fresh: Fresh, net: Net, decodes: DecodeRecorder) -> None:
    header = {"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", "p2c": 2147483647, "p2s": b64u(bytes(16))}
    token = ".".join([b64u(jdump(header)), b64u(bytes(24)), b64u(bytes(12)), b64u(b"x"), b64u(bytes(16))])
    _refused_undecoded(fresh(), net, decodes, token)


def test_jwe_03_cookbook_pbes2_example(
    shared_dir: Path, fresh: Fresh, net: Net, decodes: DecodeRecorder
) -> None:
    path = "vectors/jose-cookbook/jwe/5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2.json"
    data = json.loads((shared_dir / path).read_text())
    _refused_undecoded(fresh(), net, decodes, data["output"]["compact"])


def test_jwe_04_invalid_curve_epk(fresh: Fresh, net: Net, decodes: DecodeRecorder) -> None:
    epk = {"kty": "EC", "crv": "P-256", "x": b64u(bytes(31) + b"\x01"), "y": b64u(bytes(31) + b"\x01")}
    header = {"alg": "ECDH-ES+A128KW", "enc": "A128CBC-HS256", "epk": epk}
    token = ".".join([b64u(jdump(header)), b64u(bytes(24)), b64u(bytes(16)), b64u(b"x"), b64u(bytes(16))])
    _refused_undecoded(fresh(), net, decodes, token)


def test_jwe_04_wycheproof_invalid_curve_vector(
    shared_dir: Path, fresh: Fresh, net: Net, decodes: DecodeRecorder
) -> None:
    case = next(c for c in sv.jwe_cases() if c.file == "json_web_crypto_test.json" and c.tc_id == 83)
    assert case.comment == "rejectsInvalidCurvePoint"
    _refused_undecoded(fresh(), net, decodes, case.token)
