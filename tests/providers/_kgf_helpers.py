"""Helpers shared by the Keycloak, Google and Firebase profile tests.

A :class:`KeyServer` answers key-set requests at the providers' exact URLs
through ``httpx.MockTransport`` (no network) and records them; ``pem_map``
turns mock signing keys into Google's ``{kid: PEM certificate}`` map;
``rejects`` asserts an error's exact class and stable code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from federation import Bridge, VerifiedToken
from federation.errors import FederationError
from federation.testing import FrozenClock, SigningKey

Mode = Literal["sync", "async"]
Document = Callable[[], Any]
E = TypeVar("E", bound=FederationError)


class KeyServer:
    """Serves JSON documents at exact URLs with a Cache-Control max-age; logs requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[Document, int | None]] = {}
        self.requests: list[str] = []

    def add(self, url: str, document: Document, *, max_age: int | None = 300) -> None:
        self.routes[url] = (document, max_age)

    def count(self, url: str) -> int:
        return sum(1 for u in self.requests if u == url)

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}"
        self.requests.append(url)
        route = self.routes.get(url)
        if route is None:
            return httpx.Response(404, text="not found")
        document, max_age = route
        headers = {"content-type": "application/json; charset=UTF-8"}
        if max_age is not None:
            headers["cache-control"] = f"public, max-age={max_age}, must-revalidate, no-transform"
        return httpx.Response(200, json=document(), headers=headers)

    def bridge(self, config: Mapping[str, Any], clock: FrozenClock) -> Bridge:
        transport = httpx.MockTransport(self.handler)
        return Bridge.from_dict(
            config,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=clock,
        )


def run(bridge: Bridge, token: str, mode: Mode = "sync") -> VerifiedToken:
    """Verify through ``Bridge.verify`` or ``Bridge.averify``."""
    if mode == "sync":
        return bridge.verify(token)
    return asyncio.run(bridge.averify(token))


def rejects(bridge: Bridge, token: str, cls: type[E], code: str, mode: Mode = "sync") -> E:
    """Assert that verifying ``token`` raises exactly ``cls`` with ``code``; return the error."""
    with pytest.raises(cls) as info:
        run(bridge, token, mode)
    assert type(info.value) is cls, f"expected {cls.__name__}, got {type(info.value).__name__}"
    assert info.value.code == code
    return info.value


def certificate_pem(
    key: SigningKey, now: float, common_name: str = "securetoken.system.gserviceaccount.com"
) -> str:
    """A self-signed certificate for ``key`` (RSA), valid around ``now``, as PEM."""
    private = key.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.fromtimestamp(now, tz=timezone.utc) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=14))
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def pem_map(keys: Iterable[SigningKey], now: float) -> dict[str, str]:
    """Google's ``{kid: PEM certificate}`` map for ``keys``."""
    return {key.kid: certificate_pem(key, now) for key in keys}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hmac_token(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """A compact JWS signed with HMAC (Keycloak refresh tokens are HS256/HS512)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), digest).digest())
