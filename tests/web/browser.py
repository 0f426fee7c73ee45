"""Headless Chromium harness for end-to-end web tests (a helper module, not a test file).

Uses the system's Debian ``chromium`` and ``chromium-driver`` packages and never lets
Selenium Manager run (it would download a browser): the driver is always started with
an explicit ``Service(executable_path=CHROMEDRIVER)`` and ``options.binary_location =
CHROMIUM``, and ``SE_AVOID_BROWSER_DOWNLOAD=1`` is set as a second line of defence.

* ``FEDERATION_CHROMIUM`` / ``FEDERATION_CHROMEDRIVER`` override the binaries' paths.
* Missing binaries or selenium: ``require_browser()`` skips with the reason, unless
  ``FEDERATION_REQUIRE_SERVICES=1`` (CI), where it fails.
* ``chromium()`` is offline by default: only loopback (and the hosts the caller maps
  to it) resolves, so neither the tests nor Chromium's background services touch the
  network.
* ``serve_asgi(app)`` runs an ASGI app under uvicorn on loopback only, in a thread;
  over TLS with ``loopback_certificate()``'s self-signed certificate, and on a port
  chosen beforehand with ``free_port()`` when the URL must be known up front.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = os.environ.get("FEDERATION_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get(
    "FEDERATION_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
REQUIRE_SERVICES = os.environ.get("FEDERATION_REQUIRE_SERVICES") == "1"
PAGE_LOAD_TIMEOUT = 20.0
SERVER_START_TIMEOUT = 10.0
# Appended after the caller's host rules (the first matching MAP wins): loopback only.
OFFLINE_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost, EXCLUDE ::1"

_INSTALL_HINT = (
    "install it with `apt-get install -y chromium chromium-driver`, "
    "or point FEDERATION_CHROMIUM / FEDERATION_CHROMEDRIVER at the binaries"
)


def _missing_reason() -> str | None:
    """Why the browser cannot run here, or ``None`` when it can."""
    problems = [
        f"{name} not found at {path}"
        for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
        if not (os.path.isfile(path) and os.access(path, os.X_OK))
    ]
    if problems:
        problems.append(_INSTALL_HINT)
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("selenium is not importable (pip install -e '.[test]')")
    return "; ".join(problems) if problems else None


def require_browser() -> None:
    """Skip the calling test (laptop) or fail it (CI) when headless Chromium can't run."""
    reason = _missing_reason()
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(reason + "; FEDERATION_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(reason)


@contextmanager
def chromium(
    *,
    host_rules: str | None = None,
    offline: bool = True,
    window_size: str = "1280,800",
    extra_args: Sequence[str] = (),
) -> Iterator[WebDriver]:
    """A fresh headless Chromium driven by the system chromedriver.

    ``host_rules`` is passed to ``--host-resolver-rules`` (e.g.
    ``"MAP *.example.test 127.0.0.1"``) so tests can use real-looking host names that
    resolve to loopback. With ``offline`` (the default) every other host, IP literals
    included, fails to resolve (``OFFLINE_RULES``): Chromium's own background traffic
    (network time, component updates, the search engine's preconnect, accounts) never
    leaves the machine, and navigation doesn't stall behind it (without the rule the
    first page load of a fresh browser here sometimes took 1 s or 5 s). ``extra_args``
    are appended to the command line. The profile lives in a temporary directory; the
    driver is quit and the directory removed on exit, even when the body raises.
    """
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_AVOID_BROWSER_DOWNLOAD"] = "1"  # belt and braces; the paths below are explicit
    profile = tempfile.mkdtemp(prefix="federation-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--no-proxy-server",
        f"--user-data-dir={profile}",
        f"--window-size={window_size}",
    ):
        options.add_argument(arg)
    rules = [r for r in (host_rules, OFFLINE_RULES if offline else None) if r]
    if rules:
        options.add_argument(f"--host-resolver-rules={', '.join(rules)}")
    for arg in extra_args:
        options.add_argument(arg)
    driver: WebDriver | None = None
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        yield driver
    finally:
        try:
            if driver is not None:
                driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def cookies(driver: WebDriver) -> dict[str, dict[str, Any]]:
    """The current page's cookies by name, as WebDriver reports them.

    Each value has ``name``, ``value``, ``path``, ``domain``, ``secure``, ``httpOnly``,
    ``sameSite`` and, for persistent cookies, ``expiry``. WebDriver only returns the
    cookies visible to the current document's URL (HttpOnly included); a ``__Host-``
    cookie shows up with its attributes (``secure``, ``path="/"``, host-only domain)
    but WebDriver says nothing about the prefix rules themselves.
    """
    return {c["name"]: c for c in driver.get_cookies()}


def cdp_cookies(driver: WebDriver) -> list[dict[str, Any]]:
    """Every cookie in the browser's jar via CDP ``Network.getAllCookies``.

    Unlike ``cookies``, this is not limited to the current URL; entries carry
    ``httpOnly``, ``secure``, ``sameSite`` (absent when unspecified), ``expires``
    (``-1`` for session cookies), ``session``, ``sourceScheme`` and more.
    """
    result = driver.execute_cdp_cmd("Network.getAllCookies", {})
    return list(result.get("cookies", []))


@contextmanager
def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_certfile: str | os.PathLike[str] | None = None,
    ssl_keyfile: str | os.PathLike[str] | None = None,
) -> Iterator[str]:
    """Serve ``app`` under uvicorn in a background thread; yield its base URL.

    Only loopback addresses are accepted. ``port=0`` picks a free port, read back from
    the bound socket. With ``ssl_certfile`` and ``ssl_keyfile`` (PEM files, e.g. from
    ``loopback_certificate``) uvicorn serves TLS and the URL is ``https://``; Chromium
    then needs ``--ignore-certificate-errors`` for the self-signed certificate. The
    server is asked to exit and its thread joined on exit.
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"serve_asgi only listens on loopback, not {host!r}")
    import uvicorn

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ValueError("serve_asgi needs both ssl_certfile and ssl_keyfile, or neither")
    tls: dict[str, Any] = {}
    if ssl_certfile is not None and ssl_keyfile is not None:
        tls = {"ssl_certfile": os.fspath(ssl_certfile), "ssl_keyfile": os.fspath(ssl_keyfile)}
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", **tls)
    server = uvicorn.Server(config)
    # Off the main thread uvicorn installs no signal handlers, which is what we want here.
    thread = threading.Thread(target=server.run, name="serve_asgi", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited before it started (see its log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {SERVER_START_TIMEOUT:.0f} s")
            time.sleep(0.01)
        bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        scheme = "https" if tls else "http"
        yield f"{scheme}://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_TIMEOUT)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (bound to port 0, read back, closed).

    For servers whose URL must be known before they start (a redirect URI registered
    with an issuer, a ``public_url`` in a config); pass it to ``serve_asgi(port=...)``.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def loopback_certificate(directory: str | os.PathLike[str], *, days: int = 1) -> tuple[Path, Path]:
    """A self-signed TLS certificate for 127.0.0.1 (and ``localhost``) written to ``directory``.

    EC P-256 key, a SAN of ``IP:127.0.0.1`` and ``DNS:localhost``, valid from a minute
    ago for ``days``. Returns ``(certfile, keyfile)``, PEM, for ``serve_asgi``.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(directory)
    certfile, keyfile = folder / "loopback-cert.pem", folder / "loopback-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return certfile, keyfile
