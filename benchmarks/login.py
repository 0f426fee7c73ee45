"""Login benchmark: ``bridge.provision`` of an existing user against its own SQL run bare.

Run from the repository root::

    python benchmarks/login.py                      # SQLite and PostgreSQL, 10k users
    python benchmarks/login.py --quick              # fewer logins and rounds, a rough look
    python benchmarks/login.py --touch-interval 0   # every login writes its login time
    python benchmarks/login.py --backends postgres --users 10000 --logins 2000 --rounds 7

What is measured (docs/performance.md, "Login against the bare statements"):

* ``bridge``: ``bridge.provision(vt)`` of users who exist, with tokens verified
  beforehand: the demo's example mapping on the real engine, then the store.
  The users already hold what the mapping gives them (a steady state: nothing
  to change but, at most, the login time). Users are drawn at random from the
  whole store.
* ``bare``: the very SQL statements the store issued for one such login
  (captured from the engine and printed), run without the library:
  PostgreSQL through ``pgbench -M prepared -c 1`` over the same loopback TCP
  (its tps without the initial connection time), SQLite through Python's
  ``sqlite3`` module on the same file, with the same pragmas and the same
  transaction shape, in a loop. Each run draws its own random users.

Each round times both, one after the other; the figure is the median of the
per-round ratios bridge / bare (paired, so load from other processes on the
machine hits both alike).

``--touch-interval`` is ``provisioning.touch_interval`` (seconds): a login
writes its time only when the stored one is older (default here 300; 0 writes
on every login, the shape before that setting existed).

PostgreSQL: ``FEDERATION_BENCH_POSTGRES_URL`` (default: the test server
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), ``pgbench`` from
``FEDERATION_BENCH_PGBENCH`` or the PATH or ``/usr/lib/postgresql/*/bin``; the
run works in a schema of its own and drops it.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from provisioning import ISSUER, POSTGRES_URL, _claims, _drop_postgres_schema, _populate, _postgres_schema
from sqlalchemy import event
from sqlalchemy.engine import make_url

from federation._cli_store import EXAMPLE_MAPPING
from federation.config import ProvisioningConfig
from federation.mapping import Mapping
from federation.storage import SQLStore
from federation.testing import MockIdP

AUDIENCE = "bench-client"


def _user_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1))  # as provisioning.py's _populate numbers them


class Capture:
    """The statements an engine sends for one login, with their parameters and the
    transaction edges (listening only meanwhile: a store whose statements are listened to
    runs its reads through SQLAlchemy, so the timed logins run without listeners)."""

    def __init__(self, store: SQLStore) -> None:
        self.dialect = store.engine.dialect.name
        self.engine = store.engine
        self.log: list[tuple[str, Any]] = []

    def _statement(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if self.dialect == "postgresql":
            dbapi = conn.connection.dbapi_connection
            # psycopg opens a transaction itself before the first statement unless autocommit
            if not dbapi.autocommit and dbapi.info.transaction_status == 0:
                self.log.append(("BEGIN", None))
        self.log.append((statement, params))

    def _commit(self, conn: Any) -> None:
        if self.dialect == "postgresql":
            dbapi = conn.connection.dbapi_connection
            if dbapi.autocommit or dbapi.info.transaction_status == 0:
                return  # nothing open: psycopg sends nothing
        elif not conn.connection.dbapi_connection.in_transaction:
            return
        self.log.append(("COMMIT", None))

    def one_login(self, run: Callable[[], object]) -> list[tuple[str, Any]]:
        self.log = []
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        try:
            run()
        finally:
            event.remove(self.engine, "before_cursor_execute", self._statement)
            event.remove(self.engine, "commit", self._commit)
        return self.log


def _values(n: int) -> dict[str, Any]:
    return {"subject": f"user-{n}", "user_id": _user_id(n)}


def _role(value: Any, n: int) -> str | None:
    """Which per-login value a captured parameter is (they differ from login to login)."""
    for name, v in _values(n).items():
        if value == v:
            return name
    if isinstance(value, datetime | str) and re.fullmatch(r"\d{4}-\d\d-\d\d[ T][\d:.]+", str(value)):
        return "now"
    if isinstance(value, datetime):
        return "now"
    return None


def _pg_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


_PG_EXPR = {
    "subject": "'user-' || :n",
    "user_id": "'00000000-0000-0000-0000-' || lpad(to_hex(:n + 1), 12, '0')",
    "now": "now()",
}


def _pg_value(value: Any, n: int) -> str:
    role = _role(value, n)
    return _PG_EXPR[role] if role else _pg_literal(value)


def pgbench_script(log: list[tuple[str, Any]], n: int, users: int) -> str:
    """The captured statements as a pgbench script: the per-login values from ``\\set n``."""
    lines = [f"\\set n random(0, {users - 1})"]
    for statement, params in log:
        sql = " ".join(statement.split())
        if params:
            sql = re.sub(r"%\((\w+)\)s", lambda m, p=params: _pg_value(p[m.group(1)], n), sql)
        lines.append(sql + ";")
    return "\n".join(lines) + "\n"


def _pgbench() -> str | None:
    found = os.environ.get("FEDERATION_BENCH_PGBENCH") or shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def run_pgbench(pgbench: str, script: Path, transactions: int, schema: str) -> float:
    """ms per run of ``script``, from pgbench's tps without the initial connection time."""
    url = make_url(POSTGRES_URL)
    env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
    command = [pgbench, "-n", "-M", "prepared", "-c", "1", "-t", str(transactions), "-f", str(script)]
    command += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    command.append(url.database or "postgres")
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if tps is None:  # pragma: no cover - another pgbench's wording
        raise RuntimeError("pgbench printed no tps:\n" + out)
    return 1000 / float(tps.group(1))


def sqlite_loop(
    path: str, log: list[tuple[str, Any]], n0: int, users: int, logins: int, rng: random.Random
) -> float:
    """ms per login of the captured statements through sqlite3, the store's pragmas and transaction shape."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("foreign_keys=ON", "busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    steps: list[tuple[str, list[tuple[int, str | None, Any]]]] = []
    for statement, params in log:
        shape = [(i, _role(v, n0), v) for i, v in enumerate(params or ())]
        steps.append((statement, shape))
    ns = [rng.randrange(users) for _ in range(logins)]
    start = time.perf_counter()
    for n in ns:
        values = _values(n)
        stamp = None
        for statement, shape in steps:
            if statement == "COMMIT":
                conn.commit() if conn.in_transaction else None
                continue
            args = []
            for _, role, value in shape:
                if role == "now":
                    stamp = stamp or datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ")
                    args.append(stamp)
                elif role:
                    args.append(values[role])
                else:
                    args.append(value)
            conn.execute(statement, args).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / logins * 1000


def psycopg_loop(
    schema: str, log: list[tuple[str, Any]], n0: int, users: int, logins: int, rng: random.Random
) -> float:
    """ms per login of the captured statements through psycopg alone (prepared, one connection):
    what the Python driver costs, between pgbench's C client and the library."""
    import psycopg

    url = make_url(POSTGRES_URL)
    conn = psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        dbname=url.database or "postgres",
        autocommit=True,  # BEGIN and COMMIT are among the statements when the store sent them
        options=f"-c search_path={schema}",
    )
    steps = [(statement, dict(params or {})) for statement, params in log]
    ns = [rng.randrange(users) for _ in range(logins)]
    start = time.perf_counter()
    with conn.cursor() as cursor:
        for n in ns:
            values = _values(n)
            now = datetime.now(timezone.utc)
            for statement, params in steps:
                args = {}
                for name, value in params.items():
                    role = _role(value, n0)
                    args[name] = now if role == "now" else values[role] if role else value
                cursor.execute(statement, args or None, prepare=True)
                if cursor.description is not None:
                    cursor.fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / logins * 1000


def measure_bridge(bridge: Any, verified: list[Any]) -> float:
    start = time.perf_counter()
    for vt in verified:
        bridge.provision(vt)
    return (time.perf_counter() - start) / len(verified) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 300 logins")
    parser.add_argument("--users", type=int, default=10_000, help="users in each store (default 10000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--logins", type=int, default=None, help="logins per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7)")
    parser.add_argument(
        "--touch-interval", type=float, default=300, help="provisioning.touch_interval (default 300)"
    )
    args = parser.parse_args(argv)
    logins = args.logins or (300 if args.quick else 1000)
    rounds = args.rounds or (3 if args.quick else 7)
    users = args.users
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rng = random.Random(1)
    provisioning: dict[str, Any] = {}
    if "touch_interval" in ProvisioningConfig.model_fields:
        provisioning["touch_interval"] = args.touch_interval
    elif args.touch_interval:
        print("(this checkout has no provisioning.touch_interval: every login writes)")

    print(
        f"federation-bridge login benchmark: Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {users} users, {rounds} rounds x {logins} logins; "
        f"touch_interval={provisioning.get('touch_interval', 'n/a')}\n"
    )
    idp = MockIdP(issuer=ISSUER, audience=AUDIENCE)
    mapping = Mapping.from_yaml(EXAMPLE_MAPPING)
    pgbench = _pgbench()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="federation-bench-") as tmp:
        pg = _postgres_schema() if "postgres" in backends else None
        if pg is not None and pgbench is None:
            print("PostgreSQL skipped: no pgbench found")
        setups = []
        try:
            for backend in backends:
                if backend == "postgres" and (pg is None or pgbench is None):
                    continue
                if backend == "sqlite":
                    path = f"{tmp}/users.db"
                    store = SQLStore(f"sqlite:///{path}")
                else:
                    assert pg is not None
                    store = SQLStore(POSTGRES_URL, schema=pg[1], table_prefix="")
                _populate(store, users)
                config = idp.bridge_config(**({"provisioning": provisioning} if provisioning else {}))
                bridge = idp.bridge(
                    config=config, store=store, mapping=mapping, on_event=lambda e: None, audit=lambda e: None
                )
                bridge.warm_up()

                def verified(count: int) -> list[Any]:
                    return [
                        bridge.verify(idp.mint(_claims(rng.randrange(users)), lifetime=3600))  # noqa: B023
                        for _ in range(count)
                    ]

                measure_bridge(bridge, verified(200))  # warm-up: connections, caches, prepared statements
                capture = Capture(store)
                n0 = 4242
                sample = bridge.verify(idp.mint(_claims(n0), lifetime=3600))
                log = capture.one_login(lambda: bridge.provision(sample))  # noqa: B023
                print(f"{backend}: the statements of one login (user-{n0}):")
                for statement, params in log:
                    print(f"    {' '.join(statement.split())}")
                    if params:
                        print(f"        {params!r}")
                if backend == "postgres":
                    script = Path(tmp) / "login.sql"
                    script.write_text(pgbench_script(log, n0, users))
                    print(
                        "  as the pgbench script:\n    " + script.read_text().strip().replace("\n", "\n    ")
                    )
                    assert pgbench is not None and pg is not None
                    bare: list[tuple[str, Callable[[], float]]] = [
                        ("pgbench", lambda s=script, sc=pg[1]: run_pgbench(pgbench, s, logins, sc)),
                        (
                            "psycopg",
                            lambda sc=pg[1], lg=log, n=n0: psycopg_loop(sc, lg, n, users, logins, rng),
                        ),
                    ]
                else:
                    bare = [
                        ("sqlite3", lambda p=path, lg=log, n=n0: sqlite_loop(p, lg, n, users, logins, rng))
                    ]
                for _, run in bare:
                    run()  # warm-up
                print()
                setups.append((backend, bridge, verified, bare, store))
            for _ in range(rounds):
                for backend, bridge, verified, bare, _store in setups:
                    tokens = verified(logins)
                    ms_bridge = measure_bridge(bridge, tokens)
                    for name, run in bare:
                        results.setdefault((backend, name), []).append((ms_bridge, run()))
        finally:
            for *_, store in setups:
                store.close()
            if pg is not None:
                _drop_postgres_schema(pg)

    header = (
        f"{'store':<10} {'bare':<8} {'ms/login bridge':>16} {'ms/login bare':>14} {'ratio':>8}  per round"
    )
    print(header)
    print("-" * len(header))
    for (backend, name), pairs in results.items():
        ratios = [b / s for b, s in pairs]
        per_round = " ".join(f"{r:.2f}" for r in ratios)
        ms_bridge = statistics.median(b for b, _ in pairs)
        ms_bare = statistics.median(s for _, s in pairs)
        ratio = statistics.median(ratios)
        print(f"{backend:<10} {name:<8} {ms_bridge:>16.4f} {ms_bare:>14.4f} {ratio:>7.2f}x  {per_round}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
