"""Provisioning benchmark: logins of existing users per second, as the store grows.

Run from the repository root::

    python benchmarks/provisioning.py                 # SQLite and PostgreSQL, 1k and 100k users
    python benchmarks/provisioning.py --quick         # 1k and 10k users, fewer logins
    python benchmarks/provisioning.py --sizes 1000,100000 --logins 2000 --backends sqlite

What is measured (docs/performance.md, "Provisioning"):

* ``login``: ``bridge.login(token)`` of a user who exists: verify (RS256, keys
  cached), map (the demo's example mapping, with the real engine), provision
  (one transaction: find the identity, lock and read the user, update the
  login time, commit). Tokens are distinct, pre-minted, for users drawn at
  random from the whole store, so no cache helps.
* ``provision``: ``bridge.provision(vt)`` of the same users with the tokens
  verified beforehand: the mapping and the store alone.

Each figure is the median over rounds of one thread's sequential logins (the
rounds interleave the store sizes, so load from other processes hits both).
The claim checked is that the cost per login stays flat from 1 thousand to
100 thousand users: every query of a login is an index lookup.

PostgreSQL: ``FEDERATION_BENCH_POSTGRES_URL`` (default: the test server
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); the run works in a
schema of its own and drops it. Unreachable: the PostgreSQL rows are skipped
with a note.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from sqlalchemy import create_engine, insert, text

from federation import Bridge
from federation._cli_store import EXAMPLE_MAPPING
from federation.mapping import Mapping
from federation.storage import SQLStore, email_key
from federation.testing import MockIdP

ISSUER = "https://idp.bench.test"
AUDIENCE = "bench-client"
POSTGRES_URL = os.environ.get(
    "FEDERATION_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BATCH = 10_000


@dataclass
class Row:
    backend: str
    users: int
    login_ms: list[float]
    provision_ms: list[float]


def _populate(store: SQLStore, count: int) -> None:
    """``count`` users, each with one identity (subject ``user-<n>``), in bulk."""
    store.init_schema()
    now = datetime.now(timezone.utc)
    with store.engine.begin() as conn:
        for start in range(0, count, BATCH):
            users, identities = [], []
            for n in range(start, min(count, start + BATCH)):
                user_id = str(uuid.UUID(int=n + 1))
                email = f"user{n}@example.com"
                users.append(
                    {
                        "id": user_id,
                        "username": f"user{n}",
                        "email": email,
                        "email_key": email_key(email),
                        "email_verified": True,
                        "display_name": f"User {n}",
                        "roles": ["member", "staff"],  # what the mapping grants: steady state
                        "attributes": {"department": "R&D"},
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                        "last_login_at": now,
                    }
                )
                identities.append(
                    {
                        "issuer": ISSUER,
                        "subject": f"user-{n}",
                        "provider": "oidc",
                        "user_id": user_id,
                        "created_at": now,
                    }
                )
            conn.execute(insert(store.users_table), users)
            conn.execute(insert(store.identities_table), identities)
    with store.engine.begin() as conn:  # fresh planner statistics, as a live database would have
        conn.execute(text("ANALYZE"))


def _claims(n: int) -> dict[str, Any]:
    return {
        "sub": f"user-{n}",
        "email": f"user{n}@example.com",
        "email_verified": True,
        "name": f"User {n}",
        "department": "R&D",
        "groups": ["staff"],
    }


def _measure(
    bridge: Bridge, idp: MockIdP, users: int, logins: int, rng: random.Random
) -> tuple[float, float]:
    """(ms per login, ms per provision) over ``logins`` random existing users."""
    tokens = [idp.mint(_claims(rng.randrange(users)), lifetime=3600) for _ in range(logins)]
    start = time.perf_counter()
    for token in tokens:
        bridge.login(token)
    login = (time.perf_counter() - start) / logins * 1000
    verified = [bridge.verify(idp.mint(_claims(rng.randrange(users)), lifetime=3600)) for _ in range(logins)]
    start = time.perf_counter()
    for vt in verified:
        bridge.provision(vt)
    provision = (time.perf_counter() - start) / logins * 1000
    return login, provision


def _postgres_schema() -> tuple[Any, str] | None:
    schema = f"fedbench_{uuid.uuid4().hex[:10]}"
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"PostgreSQL skipped: not reachable at {POSTGRES_URL} ({type(exc).__name__})")
        return None
    return engine, schema


def _drop_postgres_schema(pg: tuple[Any, str]) -> None:
    engine, schema = pg
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k users, 3 rounds of 200 logins")
    parser.add_argument("--sizes", default=None, help="comma-separated store sizes (default 1000,100000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--logins", type=int, default=None, help="logins per round (default 500)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,100000")).split(",")]
    logins = args.logins or (200 if args.quick else 500)
    rounds = args.rounds or (3 if args.quick else 5)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rng = random.Random(1)

    print(
        f"federation-bridge provisioning benchmark: Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {rounds} rounds x {logins} logins "
        "of existing users per store; RS256\n"
    )
    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE)
    mapping = Mapping.from_yaml(EXAMPLE_MAPPING)
    rows: list[Row] = []
    cleanup: list[Any] = []
    bridges: list[tuple[Row, Bridge]] = []
    with tempfile.TemporaryDirectory(prefix="federation-bench-") as tmp:
        pg = _postgres_schema() if "postgres" in backends else None
        for backend in backends:
            if backend == "postgres" and pg is None:
                continue
            for size in sizes:
                if backend == "sqlite":
                    store = SQLStore(f"sqlite:///{tmp}/users-{size}.db")
                else:
                    assert pg is not None
                    store = SQLStore(POSTGRES_URL, schema=pg[1], table_prefix=f"s{size}_")
                began = time.perf_counter()
                _populate(store, size)
                print(f"  {backend:<10} {size:>7} users loaded in {time.perf_counter() - began:.1f} s")
                bridge = idp.bridge(
                    store=store, mapping=mapping, on_event=lambda e: None, audit=lambda e: None
                )
                bridge.warm_up()
                _measure(bridge, idp, size, 50, rng)  # warm-up: connections, statement caches
                row = Row(backend, size, [], [])
                rows.append(row)
                bridges.append((row, bridge))
                cleanup.append(store)
        print()
        for _ in range(rounds):  # interleave the stores round by round
            for row, bridge in bridges:
                login, provision = _measure(bridge, idp, row.users, logins, rng)
                row.login_ms.append(login)
                row.provision_ms.append(provision)
        for store in cleanup:
            store.close()
        if pg is not None:
            _drop_postgres_schema(pg)

    header = (
        f"{'store':<10} {'users':>8} {'logins/s':>9} {'ms/login':>9} {'ms/provision':>13} {'vs smallest':>12}"
    )
    print(header)
    print("-" * len(header))
    base: dict[str, float] = {}
    for row in rows:
        login = statistics.median(row.login_ms)
        provision = statistics.median(row.provision_ms)
        base.setdefault(row.backend, login)
        print(
            f"{row.backend:<10} {row.users:>8} {1000 / login:>9.0f} {login:>9.3f} {provision:>13.3f} "
            f"{login / base[row.backend]:>11.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
