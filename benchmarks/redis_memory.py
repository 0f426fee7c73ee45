"""Redis memory per session: what sizing a shared revocation store needs (docs/deployment.md).

Starts a redis-server of its own on a free loopback port (nothing else in it),
stores N sessions as the bridge does (one refresh token each, rotated once; one
revoked access-token jti per session), and prints the server's used_memory per
session and per million sessions. Run: ``python benchmarks/redis_memory.py [N]``.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from federation.storage import NewRefreshToken, RedisSessionStore, SessionRecord


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(n: int = 20000) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        store = RedisSessionStore(f"redis://127.0.0.1:{port}/0")
        before = int(store.client.info("memory")["used_memory"])
        now = datetime.now(timezone.utc)
        pipe_size = 500
        for start in range(0, n, pipe_size):
            for i in range(start, min(start + pipe_size, n)):
                user = f"user-{i}"
                sid = uuid.uuid4().hex
                first = hashlib.sha256(f"r{i}".encode()).hexdigest()
                record = SessionRecord(sid, user, now, now + timedelta(days=14))
                store.create_session(record, NewRefreshToken(first, now, now + timedelta(days=14)))
                successor = hashlib.sha256(f"s{i}".encode()).hexdigest()
                store.use_refresh(
                    first, NewRefreshToken(successor, now, now + timedelta(days=14)), now=now, grace=10
                )
                store.revoke_token(uuid.uuid4().hex, user_id=user, expires_at=now + timedelta(hours=1))
        after = int(store.client.info("memory")["used_memory"])
        per = (after - before) / n
        print(f"sessions: {n}  (each: 2 refresh tokens, 1 revoked jti, its user's index entries)")
        print(f"redis used_memory: {per:.0f} bytes per session, {per * 1e6 / 2**20:.0f} MiB per million")
        store.close()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
