"""Resource bounds, each enforced before the expensive work it protects.

Defaults (federation/config.py ``LimitsConfig``/``KeysConfig``, federation/_rfc7515.py ``Limits``):
token 32 KiB, header 4 KiB, JSON depth 32, 500 claims, 50 audiences, kid 256
characters; key set response 256 KiB (after content decoding), 100 keys.
"Before" is asserted by recording calls (base64url decoding, JWK import, body
chunks read), never by timing. Rows: ENC-14, ENC-15, JSON-08, JSON-12,
HDR-08, KEY-13, FETCH-06 (the latter also in the key cache tests).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from security_support import DecodeRecorder, b64u, jdump, jwks_response

from federation._json import StrictJSONError, loads_object
from federation._keys._documents import FetchFailed, parse_jwks
from federation._keys._http import FetchRequest, fetch_sync
from federation._rfc7515 import Limits, parse_compact
from federation.config import KeysConfig, LimitsConfig
from federation.errors import MalformedToken, TokenTooLarge

HEADER = b64u(b'{"alg":"RS256","kid":"k"}')


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> DecodeRecorder:
    recorder = DecodeRecorder()
    monkeypatch.setattr("federation._rfc7515.b64url_decode", recorder)
    monkeypatch.setattr("federation._rfc7515._decode_matched", recorder)  # the parser's fast path
    return recorder


def test_bound_defaults_are_the_documented_ones() -> None:
    limits, config, keys = Limits(), LimitsConfig(), KeysConfig()
    assert (limits.max_token_bytes, limits.max_header_bytes, limits.max_json_depth) == (
        32 * 1024,
        4 * 1024,
        32,
    )
    assert (limits.max_claims, limits.max_audiences, limits.max_kid_length) == (500, 50, 256)
    assert (config.max_token_bytes, config.max_header_bytes, config.max_json_depth) == (
        32 * 1024,
        4 * 1024,
        32,
    )
    assert (config.max_claims, config.max_audiences) == (500, 50)
    assert (keys.max_response_bytes, keys.max_keys, keys.timeout) == (256 * 1024, 100, 5)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_bound_token_size_before_any_decoding(decodes: DecodeRecorder, as_bytes: bool) -> None:
    token = f"{HEADER}.{'A' * (1024 * 1024)}.AAAA"
    with pytest.raises(TokenTooLarge) as info:
        parse_compact(token.encode() if as_bytes else token, Limits())
    assert info.value.code == "token_too_large"
    assert decodes.calls == 0


def test_bound_token_size_is_inclusive(decodes: DecodeRecorder) -> None:
    token = f"{HEADER}.{b64u(b'{}')}.AAAA"
    assert parse_compact(token, Limits(max_token_bytes=len(token))).claims == {}
    with pytest.raises(TokenTooLarge):
        parse_compact(token, Limits(max_token_bytes=len(token) - 1))


def test_bound_header_size_before_decoding(decodes: DecodeRecorder) -> None:
    big_header = b64u(jdump({"alg": "RS256", "pad": "x" * 5000}))
    with pytest.raises(TokenTooLarge):
        parse_compact(f"{big_header}.{b64u(b'{}')}.AAAA", Limits())
    assert decodes.calls == 0


def test_bound_dot_flood_before_decoding(decodes: DecodeRecorder) -> None:
    with pytest.raises(MalformedToken):
        parse_compact("a" + "." * 30_000, Limits())
    assert decodes.calls == 0


@pytest.mark.parametrize("depth", [33, 1000, 200_000])
def test_bound_json_depth_without_recursion_error(depth: int) -> None:
    document = ('{"x":' + "[" * depth + "]" * depth + "}").encode()
    with pytest.raises(StrictJSONError):
        loads_object(document, max_depth=32)


def test_bound_json_depth_exact() -> None:
    assert loads_object(('{"x":' + "[" * 31 + "]" * 31 + "}").encode(), max_depth=32)
    with pytest.raises(StrictJSONError):
        loads_object(('{"x":' + "[" * 32 + "]" * 32 + "}").encode(), max_depth=32)
    with pytest.raises(StrictJSONError):
        loads_object(('{"x":' + '{"y":' * 32 + "1" + "}" * 32 + "}").encode(), max_depth=32)


def test_bound_number_of_claims_before_signature_decoding(decodes: DecodeRecorder) -> None:
    claims = {f"c{i}": 1 for i in range(501)}
    with pytest.raises(MalformedToken):
        parse_compact(f"{HEADER}.{b64u(jdump(claims))}.AAAA", Limits())
    assert decodes.calls == 2  # header and payload; the signature was never decoded


def test_bound_kid_length_before_payload_decoding(decodes: DecodeRecorder) -> None:
    header = b64u(jdump({"alg": "RS256", "kid": "k" * 257}))
    with pytest.raises(MalformedToken):
        parse_compact(f"{header}.{b64u(b'{}')}.AAAA", Limits())
    assert decodes.calls == 1  # the header only


def test_bound_key_count_before_any_key_import(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def counting(entry: object) -> object:
        nonlocal calls
        calls += 1
        raise AssertionError("a key was imported")

    monkeypatch.setattr("federation._rfc7517.import_jwk", counting)
    with pytest.raises(FetchFailed) as info:
        parse_jwks(jwks_response({"keys": [{"kty": "RSA"}] * 101}), KeysConfig())
    assert info.value.reason == "too_many_keys"
    assert calls == 0


def test_bound_key_count_is_configurable() -> None:
    doc = {"keys": [{"kty": "PQC"}] * 5}
    with pytest.raises(FetchFailed) as info:
        parse_jwks(jwks_response(doc), KeysConfig(max_keys=4))
    assert info.value.reason == "too_many_keys"
    with pytest.raises(FetchFailed) as info:
        parse_jwks(jwks_response(doc), KeysConfig(max_keys=5))
    assert info.value.reason == "no_usable_key"


def _fetch(handler: httpx.MockTransport, max_bytes: int = 256 * 1024) -> object:
    with httpx.Client(transport=handler) as client:
        return fetch_sync(
            client, FetchRequest("https://idp.test/jwks", "jwks"), timeout=5, max_bytes=max_bytes
        )


def test_bound_key_set_response_declared_too_large_is_not_read() -> None:
    reads = 0

    def body() -> Iterator[bytes]:
        nonlocal reads
        for _ in range(1000):
            reads += 1
            yield b"x" * 1024

    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-length": str(1024 * 1000)}, content=body())
    )
    response = _fetch(transport)
    assert response.error == "response_too_large"  # type: ignore[attr-defined]
    assert reads == 0


def test_bound_key_set_response_stream_is_cut_at_the_cap() -> None:
    reads = 0

    def endless() -> Iterator[bytes]:
        nonlocal reads
        while True:
            reads += 1
            yield b"{" * 65536

    response = _fetch(httpx.MockTransport(lambda r: httpx.Response(200, content=endless())))
    assert response.error == "response_too_large"  # type: ignore[attr-defined]
    assert reads <= 256 * 1024 // 65536 + 1


def test_bound_key_set_gzip_bomb_is_capped_after_decoding() -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-encoding": "gzip"}, content=bomb)
    )
    assert _fetch(transport).error == "response_too_large"  # type: ignore[attr-defined]


def test_bound_key_set_just_under_the_cap_is_read() -> None:
    doc = json.dumps({"keys": [], "pad": "x" * 1000}).encode()
    response = _fetch(httpx.MockTransport(lambda r: httpx.Response(200, content=doc)), max_bytes=len(doc))
    assert response.error is None and response.body == doc  # type: ignore[attr-defined]
