"""Web benchmark: a protected FastAPI endpoint against the same endpoint without auth.

Run from the repository root::

    python benchmarks/web.py            # 9 interleaved rounds x 400 requests (~30 s)
    python benchmarks/web.py --quick    # 3 rounds x 150 requests

One uvicorn process on loopback (one worker, its event loop in a thread of this
process), one keep-alive httpx client sending requests one after another. Rows, each
paired per round with the unprotected endpoint measured in the same round:

* ``/open``: no dependency (the baseline: HTTP, uvicorn and FastAPI themselves);
* ``/me``, repeated session token: ``Depends(auth.principal())`` with a token every
  request of the round sends again (the cache hit of ``authenticate``);
* ``/me``, first-seen session token: a new session token per request (a strict ES256
  verification each time);
* ``/me``, repeated external token: an issuer's RS256 token sent again.

Reported: requests per second and the ratio of the protected endpoint's rate to the
baseline's (1.0: auth costs nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import uvicorn
from fastapi import Depends, FastAPI
from run import header, paired, quartiles

from federation.sessions import Principal, generate_private_key_pem
from federation.storage import MemoryStore
from federation.testing import MockIdP
from federation.web.fastapi import FederationAuth


def _app() -> tuple[FastAPI, Any, MockIdP]:
    idp = MockIdP(issuer="https://idp.bench.test", audience="bench", alg="RS256", clock=time.time)
    pem = generate_private_key_pem("ES256").decode()
    config = idp.bridge_config(
        sessions={"issuer": "https://app.bench.test", "keys": [{"env": "K"}], "touch_interval": 86400}
    )
    bridge = idp.bridge(config=config, store=MemoryStore(), environ={"K": pem}, audit=lambda e: None)
    auth = FederationAuth(bridge)
    app = FastAPI()

    @app.get("/open")
    async def open_endpoint() -> dict[str, str]:
        return {"user": "nobody"}

    @app.get("/me")
    async def me(principal: Principal = Depends(auth.principal())) -> dict[str, str]:  # noqa: B008
        return {"user": principal.user.id}

    assert bridge.warm_up().ok
    return app, bridge, idp


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="error", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _rate(client: httpx.Client, path: str, headers: Sequence[dict[str, str]]) -> float:
    """Requests per second for one batch (one request per header set)."""
    started = time.perf_counter()
    for h in headers:
        response = client.get(path, headers=h)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return len(headers) / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="3 rounds x 150 requests")
    args = parser.parse_args(argv)
    rounds, batch = (3, 150) if args.quick else (args.rounds, args.batch)
    started = time.perf_counter()
    title = header(rounds, batch).replace("distinct first-seen tokens per implementation", "requests per row")
    print(title + "\n")
    app, bridge, idp = _app()
    user = bridge.exchange(idp.mint(sub="bench-user", lifetime=7200)).user

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    repeated_session = bearer(bridge.issue_session(user).access_token)
    repeated_external = bearer(idp.mint(sub="bench-user", lifetime=7200))
    Row = tuple[str, Callable[[], list[dict[str, str]]]]
    rows: list[Row] = [
        ("/me, repeated session token", lambda: [repeated_session] * batch),
        (
            "/me, first-seen session token",
            lambda: [bearer(bridge.issue_session(user).access_token) for _ in range(batch)],
        ),
        ("/me, repeated external token", lambda: [repeated_external] * batch),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in rows}
    baseline: dict[str, list[float]] = {name: [] for name, _ in rows}
    with _served(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        _rate(client, "/open", [{}] * 50)  # warm the connection and the app
        for _name, make in rows:
            _rate(client, "/me", make()[:20])
        for _ in range(rounds):
            for name, make in rows:
                batches = make()
                baseline[name].append(_rate(client, "/open", [{}] * batch))
                results[name].append(_rate(client, "/me", batches))
    print(
        "| path | requests/s (median) | baseline /open requests/s "
        "| ratio to baseline (paired median) | ratio IQR |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, _ in rows:
        ratios = paired(results[name], baseline[name])
        low, mid, high = quartiles(ratios)
        print(
            f"| {name} | {statistics.median(results[name]):.0f} | {statistics.median(baseline[name]):.0f} "
            f"| {mid:.3f} | {low:.3f}-{high:.3f} |"
        )
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    bridge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
