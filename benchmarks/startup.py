"""Start-up cost: ``import federation`` and ``federation --version`` against ``import jwt`` (PyJWT),
and the first token after a cold start against PyJWT with ``PyJWKClient``.

Run from the repository root (``pip install -e '.[bench]'`` for PyJWT)::

    python benchmarks/startup.py [--runs 15]
    python benchmarks/startup.py --clean-venv   # in a fresh venv holding only what a deployment installs

``--clean-venv`` first builds a throwaway virtual environment with ``pip install`` of this
checkout (no extras) and PyJWT, and times that interpreter: a development environment also
holds test tooling that the libraries probe for at import (httpcore imports ``trio`` when it
is installed), which a deployment does not pay.

Each measurement is a fresh interpreter, started as a serverless cold start starts one;
the commands alternate (A B A B ...) and each ratio is taken pair by pair, so a drift in
the machine's speed moves both sides of a pair alike. Printed: the median wall time of
each command and the median of the paired ratios.

The cold-start row: the interpreter starts, builds its verifier and verifies one RS256
token whose issuer's JWK Set it fetches from a loopback HTTP server this script runs.
Ours: ``Bridge.from_file(config)`` (a YAML file naming the issuer, its audience and its
``jwks_uri``) and ``bridge.verify(token)``; PyJWT: ``PyJWKClient(jwks_uri)``,
``get_signing_key_from_jwt(token)`` and ``jwt.decode(...)`` with the audience and issuer.
Beside it, in the same rounds, the cold start's dependencies alone: an interpreter that
imports every module outside this package that the cold start loads, defines and validates
one pydantic model and builds one TLS context, so the last line (the cold start over that)
is what this package's own code adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ISSUER = "https://idp.cold-start.test"
AUDIENCE = "cold-start-app"


def _wall(command: Sequence[str]) -> float:
    started = time.perf_counter()
    # Outside the checkout: its federation/ must not shadow the package the interpreter has installed.
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


@contextmanager
def _jwks_server(jwks: dict[str, object]) -> Iterator[str]:
    """A loopback HTTP server answering every GET with ``jwks``; yields its URL."""
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    finally:
        server.shutdown()


def _cold_start_commands(python: str, work: Path, jwks_uri: str) -> tuple[list[str], list[str]]:
    """(ours, PyJWT's): a fresh interpreter that verifies ``work/token`` once."""
    (work / "bridge.yaml").write_text(
        f"issuers:\n  - issuer: {ISSUER}\n    audiences: [{AUDIENCE}]\n    algorithms: [RS256]\n"
        f"    jwks_uri: {jwks_uri}\nkeys:\n  allow_loopback_http: true\n"
    )
    token = str(work / "token")
    ours = (
        "import sys; from federation import Bridge; "
        "bridge = Bridge.from_file(sys.argv[1]); "
        "assert bridge.verify(open(sys.argv[2]).read()).subject == 'cold'"
    )
    theirs = (
        "import sys, jwt; token = open(sys.argv[2]).read(); "
        "key = jwt.PyJWKClient(sys.argv[1]).get_signing_key_from_jwt(token); "
        "claims = jwt.decode(token, key.key, algorithms=['RS256'], "
        f"audience={AUDIENCE!r}, issuer={ISSUER!r}); "
        "assert claims['sub'] == 'cold'"
    )
    return (
        [python, "-c", ours, str(work / "bridge.yaml"), token],
        [python, "-c", theirs, jwks_uri, token],
    )


def _paired(name: str, ours_cmd: Sequence[str], theirs_cmd: Sequence[str], runs: int) -> None:
    _row(name, *_rounds([ours_cmd, theirs_cmd], runs))


def _row(name: str, ours: list[float], theirs: list[float]) -> None:
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(
        f"{name:32} {statistics.median(ours):9.3f} {statistics.median(theirs):7.3f} "
        f"{statistics.median(ratios):13.3f}"
    )


def _rounds(commands: Sequence[Sequence[str]], runs: int) -> list[list[float]]:
    """Wall times of each command: ``runs`` rounds, each running all of them back to back."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, mine in zip(commands, times, strict=True):
            mine.append(_wall(command))
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--clean-venv", action="store_true", help="time a fresh venv holding only this package and PyJWT"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedbench-venv-") as venv:
        python = _clean_venv(Path(venv)) if args.clean_venv else sys.executable
        _report(python, args.runs)
    return 0


def _clean_venv(where: Path) -> str:
    """A new virtual environment at ``where`` with this checkout (no extras) and PyJWT; its python."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = str(where / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(root), "PyJWT"], check=True)
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], check=True,
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    print(f"clean venv: {len(listed)} distributions ({', '.join(sorted(listed))})\n")
    return python


def _report(python: str, runs: int) -> None:
    baseline = [python, "-c", "import jwt"]
    rows = {
        "import federation": [python, "-c", "import federation"],
        "federation --version": [python, "-c", "import sys; sys.argv[1:] = ['--version']; "
                                 "from federation._entry import main; main()"],
        "from federation import Bridge": [python, "-c", "from federation import Bridge"],
    }  # fmt: skip
    for command in (baseline, *rows.values()):
        _wall(command)  # warm the file cache
    print(f"Python {sys.version.split()[0]}, {runs} paired runs; baseline: python -c 'import jwt'\n")
    print(f"{'command':32} {'median s':>9} {'jwt s':>7} {'x import jwt':>13}")
    for name, command in rows.items():
        _paired(name, command, baseline, runs)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
    from federation.testing import MockIdP

    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE, alg="RS256")
    with tempfile.TemporaryDirectory(prefix="fedbench-cold-") as tmp, _jwks_server(idp.jwks()) as url:
        work = Path(tmp)
        (work / "token").write_text(idp.mint(sub="cold", lifetime=3600))
        ours_cmd, theirs_cmd = _cold_start_commands(python, work, url)
        for command in (ours_cmd, theirs_cmd):
            _wall(command)  # warm the file cache (and fail early if either cannot verify)
        floor_cmd = _dependencies_alone(python, work, ours_cmd)
        _wall(floor_cmd)
        print(f"\n{'first token after a cold start':32} {'median s':>9} {'PyJWT s':>7} {'x PyJWT':>13}")
        ours, floor, theirs = _rounds([ours_cmd, floor_cmd, theirs_cmd], runs)
        _row("Bridge.from_file + verify", ours, theirs)
        _row("its dependencies alone", floor, theirs)
        over = statistics.median([a / b for a, b in zip(ours, floor, strict=True)])
        print(f"\nthe cold start / its dependencies alone (paired): {over:.3f}")


def _dependencies_alone(python: str, work: Path, ours_cmd: Sequence[str]) -> list[str]:
    """A fresh interpreter doing what the cold start's dependencies cost, none of ours.

    It imports, in the order the cold start loaded them, every module outside this package
    that the cold start loaded, then defines and validates one pydantic model with a
    constrained field and builds the TLS context the key fetch builds: the floor under
    the cold-start row while the configuration is a pydantic model and the keys come
    through httpx.
    """
    listing = work / "modules.json"
    record = (
        "import sys; _before = set(sys.modules); "
        + ours_cmd[2]
        + "; import json; json.dump([n for n in sys.modules if n not in _before "
        "and n.partition('.')[0] != 'federation'], open(sys.argv[3], 'w'))"
    )
    recording = [*ours_cmd[:2], record, *ours_cmd[3:], str(listing)]
    subprocess.run(recording, check=True, cwd=tempfile.gettempdir())
    alone = (
        "import importlib, json, sys\n"
        "for name in json.load(open(sys.argv[1])):\n"
        "    if name not in sys.modules:\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except ModuleNotFoundError:  # a name an extension registers as it loads (_openssl)\n"
        "            pass\n"
        "import httpx, pydantic\n"
        "class Model(pydantic.BaseModel):\n"
        "    ttl: float = pydantic.Field(600, gt=0)\n"
        "assert Model(ttl=60).ttl == 60\n"
        "httpx.create_ssl_context()\n"
    )
    return [python, "-c", alone, str(listing)]


if __name__ == "__main__":
    raise SystemExit(main())
