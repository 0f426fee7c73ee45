"""``federation serve``: the login service under uvicorn, as an operator starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from federation.sessions import generate_private_key_pem
from federation.testing import MockIdP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "federation.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_serve_runs_the_service_on_loopback(tmp_path: Path) -> None:
    idp = MockIdP()
    with idp.serve():
        port = _free_port()
        config = idp.bridge_config(
            served=True,
            sessions={"issuer": "https://app.example.test", "keys": [{"file": "session.pem"}]},
            web={"public_url": "https://app.example.test"},
        )
        (tmp_path / "session.pem").write_bytes(generate_private_key_pem("ES256"))
        path = tmp_path / "federation.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen(
            [sys.executable, "-m", "federation.cli", "serve", "-c", str(path), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            response = None
            while time.monotonic() < deadline:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert response is not None, "the service never answered"
            assert response.status_code == 200, response.text
            meta = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server").json()
            assert meta["token_endpoint"] == "https://app.example.test/token"
            exchanged = httpx.post(
                f"http://127.0.0.1:{port}/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": idp.mint(sub="alice"),
                    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                },
            )
            assert exchanged.status_code == 200, exchanged.text
            url_token = idp.mint(sub="alice", jti="in-the-url")
            httpx.get(f"http://127.0.0.1:{port}/sso", params={"token": url_token})
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
            log = out + err  # uvicorn's access log goes to stdout
        assert "GET /sso?[redacted]" in log  # the access log is on...
        assert url_token.split(".")[1] not in log  # ...and never holds a URL's token (RFC 9700 §4.3)


def test_serve_without_a_web_section_is_a_config_error(tmp_path: Path) -> None:
    idp = MockIdP()
    config = idp.bridge_config(sessions={"issuer": "https://app.example.test", "keys": [{"env": "K"}]})
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _run("serve", "-c", str(path), env={"K": generate_private_key_pem("ES256").decode()})
    assert result.returncode == 2
    assert "web" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_bad_port(tmp_path: Path) -> None:
    result = _run("serve", "-c", str(tmp_path / "missing.yaml"), "--port", "70000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line_and_never_that_it_serves(tmp_path: Path) -> None:
    """It printed "serving the login service on ..." before uvicorn found the port taken."""
    idp = MockIdP()
    config = idp.bridge_config(
        sessions={"issuer": "https://app.example.test", "keys": [{"env": "K"}]},
        web={"public_url": "https://app.example.test"},
    )
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        result = _run(
            "serve", "-c", str(path), "--port", port, env={"K": generate_private_key_pem("ES256").decode()}
        )
    assert result.returncode == 3
    assert "serving" not in result.stdout
    assert result.stderr.strip().splitlines() == [
        f"federation serve: cannot listen on 127.0.0.1:{port} (Address already in use)"
    ]
