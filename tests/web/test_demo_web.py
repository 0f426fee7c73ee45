"""``federation demo --web``: the login service against a mock issuer, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from browser import free_port


@dataclass
class Demo:
    base: str
    sso: str
    process: subprocess.Popen[str]


def _wait_until_serving(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo exited early"
        try:
            httpx.get(base + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the demo did not start serving within 30 s")


@pytest.fixture
def demo() -> Iterator[Demo]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "federation.cli", "demo", "--web", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        printed = "".join(lines)
        assert lines[-1] == "Ctrl-C stops.\n", printed
        base = f"http://127.0.0.1:{port}"
        assert f"sign in here  {base}/" in printed
        found = re.search(r"or by URL +(\S+)", printed)
        assert found is not None, printed
        _wait_until_serving(base, process)
        yield Demo(base, found.group(1), process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_printed_url_signs_in_through_the_mock_issuer_and_out(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base, follow_redirects=True, timeout=10) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and 'href="auth/login/mock?redirect_to=/"' in page.text
        assert browser.get("/auth/me").json()["error"] == "missing_token"
        landed = browser.get("/auth/login/mock", params={"redirect_to": "/"})
        assert landed.status_code == 200 and str(landed.url) == demo.base + "/"
        hops = [str(r.url) for r in landed.history]
        assert "/authorize?" in hops[1] and "/auth/callback/mock?" in hops[2]
        # plain-http development cookies on loopback: no __Host- prefix, no Secure
        assert {"federation_session", "federation_csrf"} <= set(browser.cookies.keys())
        me = browser.get("/auth/me").json()
        assert me["kind"] == "session" and me["user"]["email"] == "demo@example.test"
        csrf = browser.cookies["federation_csrf"]
        refused = browser.post("/auth/logout", headers={"Origin": demo.base})
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
        browser.post("/auth/logout", headers={"Origin": demo.base, "X-CSRF-Token": csrf})
        assert browser.get("/auth/me").status_code == 401


def test_the_printed_sso_url_works_once(demo: Demo) -> None:
    assert demo.sso.startswith(demo.base + "/auth/sso?token=")
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        first = browser.get(demo.sso)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert first.headers["referrer-policy"] == "no-referrer"
        assert browser.get(demo.base + "/auth/me").json()["kind"] == "session"
    with httpx.Client(follow_redirects=False, timeout=10) as other:
        replay = other.get(demo.sso)
        assert replay.status_code == 401 and "federation_session" not in other.cookies


def test_ctrl_c_stops_it_cleanly(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    out, err = demo.process.communicate(timeout=15)
    assert demo.process.returncode == 0, err
    assert "stopped after" in out and "Traceback" not in err


def test_web_refuses_the_options_of_the_token_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "federation.cli", "demo", "--web", "--alg", "ES256"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--web runs the login service alone" in done.stderr and "Traceback" not in done.stderr
