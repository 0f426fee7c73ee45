"""The Redis session store: sessions, refresh families and revocations shared by every process.

Owns: :class:`RedisSessionStore` (sync) and its asyncio twin
:class:`AsyncRedisSessionStore` (``store.aio``), the key layout, and the Lua
scripts: every method of :class:`~federation.storage.SessionStore` is one
script, so each step is atomic on the server (a refresh-token rotation reads
the token, its session, marks the token used and stores the successor in one
step) and costs one round trip. The two shells only move arguments and
replies; what a reply means is decided once, in the ``_parse_*`` functions.

Layout (``p`` is ``key_prefix``, default ``federation:``)::

    p session:<sid>          hash: user_id issued_at expires_at refreshed_at revoked_at generation
    p refresh:<hash>         hash: session_id issued_at expires_at used_at
    p user:<uid>:sessions    zset: session ids by issued_at (sessions_of)
    p user:<uid>:revoked     zset: revoked session ids by expiry (user_state: no scan of the live ones)
    p user:<uid>:jtis        zset: revoked jtis by expiry (user_state)
    p gen:<uid>              the user's generation (never expires)
    p claim:<sha256>         a single-use URL token's claim
    p attempts:<key>         hash: failures locked_until lockouts
    p expiry:{sessions,refresh,jtis,claims}   zsets by expiry: what purge() deletes

Times are Unix seconds as Python writes floats (``repr``: exact round trip).
Rows carry a Redis expiry too (the end of their use plus ``retain`` seconds,
on the Redis server's clock): memory stays bounded without ``purge``, which
still deletes by the caller's ``now``. Attempt counters expire
``attempts_ttl`` seconds after their last change; generations never.

Must not: decide session policy. Not for Redis Cluster (scripts derive keys).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..errors import CorruptRecord, RevocationUnavailable, StorageError
from ._session_protocol import (
    MAX_LOCKOUT_DOUBLINGS,
    AttemptState,
    NewRefreshToken,
    RefreshUse,
    SessionRecord,
    UserSessionState,
    purge_instant,
)

__all__ = ["AsyncRedisSessionStore", "RedisSessionStore"]

T = TypeVar("T")
log = logging.getLogger("federation")
RETAIN = 300.0  # seconds a row outlives its use on the server's clock (clock skew between hosts)
ATTEMPTS_TTL = 30 * 86400.0


def _ts(value: datetime | None) -> str:
    return "" if value is None else repr(value.timestamp())


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return None if text == "" else datetime.fromtimestamp(float(text), timezone.utc)


def _expire_ms(at: datetime, retain: float) -> str:
    return str(math.ceil((at.timestamp() + retain) * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- the scripts --------------------------------------------------------------------------
# Each returns plain arrays. A session comes back as its hash's fields in SESSION_FIELDS order.

SESSION_FIELDS = ("user_id", "issued_at", "expires_at", "refreshed_at", "revoked_at", "generation")

_LUA_PRELUDE = """
local p = ARGV[1]
local retain = tonumber(ARGV[2])
local function session_of(sid)
  local key = p .. 'session:' .. sid
  local row = redis.call('HMGET', key, 'user_id', 'issued_at', 'expires_at', 'refreshed_at',
                         'revoked_at', 'generation')
  if not row[1] then return nil end
  table.insert(row, 1, sid)
  return row
end
local function expire_at(key, at)
  redis.call('PEXPIREAT', key, string.format('%d', math.ceil((tonumber(at) + retain) * 1000)))
end
local function extend(key, at)  -- a set of many rows lives as long as its longest-lived row
  local ms = math.ceil((tonumber(at) + retain) * 1000)
  if redis.call('PEXPIRETIME', key) < ms then redis.call('PEXPIREAT', key, string.format('%d', ms)) end
end
local function mark_revoked(skey, sid)  -- user_state reads these, never the live sessions
  local row = redis.call('HMGET', skey, 'user_id', 'expires_at')
  local rkey = p .. 'user:' .. row[1] .. ':revoked'
  redis.call('ZADD', rkey, row[2], sid)
  extend(rkey, row[2])
  redis.call('PUBLISH', p .. 'invalidate', row[1])
end
"""

SCRIPTS: dict[str, str] = {
    # ARGV: p retain sid user issued expires refreshed revoked generation [hash r_issued r_expires]
    "create_session": """
local sid = ARGV[3]
local key = p .. 'session:' .. sid
if redis.call('EXISTS', key) == 1 then return redis.error_reply('a session with this id exists') end
redis.call('HSET', key, 'user_id', ARGV[4], 'issued_at', ARGV[5], 'expires_at', ARGV[6],
           'refreshed_at', ARGV[7], 'revoked_at', ARGV[8], 'generation', ARGV[9])
expire_at(key, ARGV[6])
redis.call('ZADD', p .. 'expiry:sessions', ARGV[6], sid)
if ARGV[8] ~= '' then mark_revoked(key, sid) end
local user_sessions = p .. 'user:' .. ARGV[4] .. ':sessions'
redis.call('ZADD', user_sessions, ARGV[5], sid)
extend(user_sessions, ARGV[6])
-- Index entries whose rows the server has expired already (by its own clock): purge() need
-- not see them.
local stale = tostring(tonumber(redis.call('TIME')[1]) - retain - 1)
for _, name in ipairs({'sessions', 'refresh', 'jtis', 'claims'}) do
  redis.call('ZREMRANGEBYSCORE', p .. 'expiry:' .. name, '-inf', stale)
end
if ARGV[10] then
  local tkey = p .. 'refresh:' .. ARGV[10]
  redis.call('HSET', tkey, 'session_id', sid, 'issued_at', ARGV[11], 'expires_at', ARGV[12], 'used_at', '')
  expire_at(tkey, ARGV[12])
  redis.call('ZADD', p .. 'expiry:refresh', ARGV[12], ARGV[10])
end
return 1
""",
    # ARGV: p retain hash now grace s_hash s_issued s_expires
    "use_refresh": """
local tkey = p .. 'refresh:' .. ARGV[3]
local sid = redis.call('HGET', tkey, 'session_id')
if not sid then return {'unknown'} end
local skey = p .. 'session:' .. sid
if redis.call('EXISTS', skey) == 0 then return {'unknown'} end
local now = tonumber(ARGV[4])
local revoked = redis.call('HGET', skey, 'revoked_at')
if revoked and revoked ~= '' then return {'revoked', session_of(sid)} end
local texp = tonumber(redis.call('HGET', tkey, 'expires_at'))
if texp == nil or texp ~= texp or texp <= now then return {'expired', session_of(sid)} end  -- nan too
local used = redis.call('HGET', tkey, 'used_at')
local outcome
if not used or used == '' then
  redis.call('HSET', tkey, 'used_at', ARGV[4])
  outcome = 'rotated'
elseif now - tonumber(used) <= tonumber(ARGV[5]) then
  outcome = 'grace'
else
  redis.call('HSET', skey, 'revoked_at', ARGV[4])
  mark_revoked(skey, sid)
  return {'reused', session_of(sid)}
end
local nkey = p .. 'refresh:' .. ARGV[6]
redis.call('HSET', nkey, 'session_id', sid, 'issued_at', ARGV[7], 'expires_at', ARGV[8], 'used_at', '')
expire_at(nkey, ARGV[8])
redis.call('ZADD', p .. 'expiry:refresh', ARGV[8], ARGV[6])
local ends = redis.call('HGET', skey, 'expires_at')
if tonumber(ARGV[8]) > tonumber(ends) then ends = ARGV[8] end
redis.call('HSET', skey, 'refreshed_at', ARGV[4], 'expires_at', ends)
expire_at(skey, ends)
extend(p .. 'user:' .. redis.call('HGET', skey, 'user_id') .. ':sessions', ends)
redis.call('ZADD', p .. 'expiry:sessions', ends, sid)
return {outcome, session_of(sid)}
""",
    # ARGV: p retain hash
    "find_refresh": """
local sid = redis.call('HGET', p .. 'refresh:' .. ARGV[3], 'session_id')
if not sid then return false end
return session_of(sid) or false
""",
    # ARGV: p retain sid
    "get_session": """
return session_of(ARGV[3]) or false
""",
    # ARGV: p retain sid now
    "revoke_session": """
local key = p .. 'session:' .. ARGV[3]
if redis.call('EXISTS', key) == 0 then return false end
local revoked = redis.call('HGET', key, 'revoked_at')
if not revoked or revoked == '' then
  redis.call('HSET', key, 'revoked_at', ARGV[4])
  mark_revoked(key, ARGV[3])
end
return session_of(ARGV[3])
""",
    # ARGV: p retain jti user expires
    "revoke_token": """
local key = p .. 'user:' .. ARGV[4] .. ':jtis'
local current = redis.call('ZSCORE', key, ARGV[3])
if current and tonumber(current) >= tonumber(ARGV[5]) then return 0 end
redis.call('ZADD', key, ARGV[5], ARGV[3])
extend(key, ARGV[5])
redis.call('ZADD', p .. 'expiry:jtis', ARGV[5], ARGV[4] .. '\\0' .. ARGV[3])
redis.call('PUBLISH', p .. 'invalidate', ARGV[4])
return 1
""",
    # ARGV: p retain claim_hash expires_ms expires_at
    "claim_once": """
local ok = redis.call('SET', p .. 'claim:' .. ARGV[3], '1', 'NX', 'PXAT', ARGV[4])
if not ok then return 0 end
redis.call('ZADD', p .. 'expiry:claims', ARGV[5], ARGV[3])
return 1
""",
    # ARGV: p retain user
    "bump_generation": """
local generation = redis.call('INCR', p .. 'gen:' .. ARGV[3])
redis.call('PUBLISH', p .. 'invalidate', ARGV[3])
return generation
""",
    # ARGV: p retain user now
    "user_state": """
local uid = ARGV[3]
local now = tonumber(ARGV[4])
local generation = redis.call('GET', p .. 'gen:' .. uid) or '0'
local revoked = redis.call('ZRANGEBYSCORE', p .. 'user:' .. uid .. ':revoked', '(' .. ARGV[4], '+inf')
local jtis = redis.call('ZRANGEBYSCORE', p .. 'user:' .. uid .. ':jtis', '(' .. ARGV[4], '+inf')
return {generation, revoked, jtis}
""",
    # ARGV: p retain user now
    "sessions_of": """
local now = tonumber(ARGV[4])
local live = {}
local ukey = p .. 'user:' .. ARGV[3] .. ':sessions'
for _, sid in ipairs(redis.call('ZRANGE', ukey, 0, -1)) do
  local row = session_of(sid)
  if not row then
    redis.call('ZREM', ukey, sid)
  elseif (not row[6] or row[6] == '') and tonumber(row[4]) > now then
    table.insert(live, row)
  end
end
return live
""",
    # ARGV: p retain key now max_attempts lockout ttl_ms max_doublings
    "record_failure": """
local key = p .. 'attempts:' .. ARGV[3]
local now = tonumber(ARGV[4])
local row = redis.call('HMGET', key, 'failures', 'locked_until', 'lockouts')
local failures = tonumber(row[1] or '0')
local locked = row[2]
local lockouts = tonumber(row[3] or '0')
if locked and locked ~= '' and tonumber(locked) > now then  -- counted while locked: no change
  return {failures, locked, lockouts}
end
if locked and locked ~= '' then failures = 0; locked = '' end
failures = failures + 1
if failures >= tonumber(ARGV[5]) then
  locked = tostring(now + tonumber(ARGV[6]) * (2 ^ math.min(lockouts, tonumber(ARGV[8]))))
  failures = 0
  lockouts = lockouts + 1
end
locked = locked or ''
redis.call('HSET', key, 'failures', failures, 'locked_until', locked, 'lockouts', lockouts)
redis.call('PEXPIRE', key, ARGV[7])
return {failures, locked, lockouts}
""",
    # ARGV: p retain key
    "attempts": """
local row = redis.call('HMGET', p .. 'attempts:' .. ARGV[3], 'failures', 'locked_until', 'lockouts')
return {row[1] or '0', row[2] or '', row[3] or '0'}
""",
    # ARGV: p retain key
    "clear_attempts": """
return redis.call('DEL', p .. 'attempts:' .. ARGV[3])
""",
    # ARGV: p retain now
    "purge": """
local now = ARGV[3]
local count = 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry:sessions', '-inf', now)) do
  local key = p .. 'session:' .. sid
  local uid = redis.call('HGET', key, 'user_id')
  if uid then
    redis.call('ZREM', p .. 'user:' .. uid .. ':sessions', sid)
    redis.call('ZREM', p .. 'user:' .. uid .. ':revoked', sid)
  end
  count = count + redis.call('DEL', key)
end
redis.call('ZREMRANGEBYSCORE', p .. 'expiry:sessions', '-inf', now)
for _, hash in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry:refresh', '-inf', now)) do
  count = count + redis.call('DEL', p .. 'refresh:' .. hash)
end
redis.call('ZREMRANGEBYSCORE', p .. 'expiry:refresh', '-inf', now)
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry:jtis', '-inf', now)) do
  local cut = string.find(entry, '\\0', 1, true)
  local uid, jti = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
  local key = p .. 'user:' .. uid .. ':jtis'
  local score = redis.call('ZSCORE', key, jti)
  if score and tonumber(score) <= tonumber(now) then count = count + redis.call('ZREM', key, jti) end
end
redis.call('ZREMRANGEBYSCORE', p .. 'expiry:jtis', '-inf', now)
for _, claim in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry:claims', '-inf', now)) do
  count = count + redis.call('DEL', p .. 'claim:' .. claim)
end
redis.call('ZREMRANGEBYSCORE', p .. 'expiry:claims', '-inf', now)
return count
""",
}


# -- one plan per method: the script, its arguments, and what the reply means -------------


@dataclass(frozen=True, slots=True)
class _Plan:
    script: str
    args: tuple[str, ...]
    parse: Callable[[Any], Any]

    def read(self, reply: Any) -> Any:
        """What ``reply`` means; one that values another program stored (or damage) make
        unreadable is a :class:`~federation.errors.CorruptRecord`, never the parser's error."""
        try:
            return self.parse(reply)
        except (ValueError, TypeError, IndexError, OverflowError, OSError):
            raise CorruptRecord(f"a session value stored in Redis is not valid ({self.script})") from None


def _session(row: Sequence[Any]) -> SessionRecord:
    sid, user_id, issued, expires, refreshed, revoked, generation = row
    issued_at, expires_at = _dt(issued), _dt(expires)
    if issued_at is None or expires_at is None:
        raise ValueError("a session without its times")  # read() makes it a CorruptRecord
    return SessionRecord(
        session_id=_text(sid),
        user_id=_text(user_id),
        issued_at=issued_at,
        expires_at=expires_at,
        refreshed_at=_dt(refreshed),
        revoked_at=_dt(revoked),
        generation=int(_text(generation or "0")),
    )


def _maybe_session(reply: Any) -> SessionRecord | None:
    return _session(reply) if reply else None


def _refresh_use(reply: Any) -> RefreshUse:
    outcome = _text(reply[0])
    session = _session(reply[1]) if len(reply) > 1 and reply[1] else None
    return RefreshUse(outcome, session)  # type: ignore[arg-type]


def _user_state(reply: Any) -> UserSessionState:
    generation, sessions, jtis = reply
    return UserSessionState(
        int(_text(generation)), frozenset(_text(s) for s in sessions), frozenset(_text(j) for j in jtis)
    )


def _attempt_state(reply: Any) -> AttemptState:
    failures, locked, lockouts = reply
    return AttemptState(int(_text(failures)), _dt(locked), int(_text(lockouts)))


class _Plans:
    """What each protocol method sends; shared by the sync and the asyncio shells."""

    def __init__(self, key_prefix: str, retain: float, attempts_ttl: float) -> None:
        self.head = (key_prefix, repr(retain))
        self.attempts_ttl_ms = str(math.ceil(attempts_ttl * 1000))

    def _plan(self, script: str, *args: str, parse: Callable[[Any], Any] = lambda r: r) -> _Plan:
        return _Plan(script, self.head + args, parse)

    def create_session(self, s: SessionRecord, refresh: NewRefreshToken | None) -> _Plan:
        tail: tuple[str, ...] = ()
        if refresh is not None:
            tail = (refresh.token_hash, _ts(refresh.issued_at), _ts(refresh.expires_at))
        return self._plan(
            "create_session",
            s.session_id,
            s.user_id,
            _ts(s.issued_at),
            _ts(s.expires_at),
            _ts(s.refreshed_at),
            _ts(s.revoked_at),
            str(s.generation),
            *tail,
            parse=lambda r: None,
        )

    def use_refresh(self, token_hash: str, successor: NewRefreshToken, now: datetime, grace: float) -> _Plan:
        return self._plan(
            "use_refresh",
            token_hash,
            _ts(now),
            repr(float(grace)),
            successor.token_hash,
            _ts(successor.issued_at),
            _ts(successor.expires_at),
            parse=_refresh_use,
        )

    def find_refresh(self, token_hash: str) -> _Plan:
        return self._plan("find_refresh", token_hash, parse=_maybe_session)

    def get_session(self, session_id: str) -> _Plan:
        return self._plan("get_session", session_id, parse=_maybe_session)

    def revoke_session(self, session_id: str, now: datetime) -> _Plan:
        return self._plan("revoke_session", session_id, _ts(now), parse=_maybe_session)

    def revoke_token(self, jti: str, user_id: str, expires_at: datetime) -> _Plan:
        return self._plan("revoke_token", jti, user_id, _ts(expires_at), parse=lambda r: None)

    def claim_once(self, key: str, expires_at: datetime) -> _Plan:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        # Kept ``retain`` past its end like every row: a Redis clock ahead of the app's must not
        # forget a claim early (a replayed URL token would sign in again).
        expire = _expire_ms(expires_at, float(self.head[1]))
        return self._plan("claim_once", digest, expire, _ts(expires_at), parse=lambda r: int(r) == 1)

    def bump_generation(self, user_id: str) -> _Plan:
        return self._plan("bump_generation", user_id, parse=int)

    def user_state(self, user_id: str, now: datetime) -> _Plan:
        return self._plan("user_state", user_id, _ts(now), parse=_user_state)

    def sessions_of(self, user_id: str, now: datetime) -> _Plan:
        return self._plan("sessions_of", user_id, _ts(now), parse=lambda r: [_session(row) for row in r])

    def record_failure(self, key: str, now: datetime, max_attempts: int, lockout: float) -> _Plan:
        return self._plan(
            "record_failure",
            key,
            _ts(now),
            str(max_attempts),
            repr(float(lockout)),
            self.attempts_ttl_ms,
            str(MAX_LOCKOUT_DOUBLINGS),
            parse=_attempt_state,
        )

    def attempts(self, key: str) -> _Plan:
        return self._plan("attempts", key, parse=_attempt_state)

    def clear_attempts(self, key: str) -> _Plan:
        return self._plan("clear_attempts", key, parse=lambda r: None)

    def purge(self, now: datetime) -> _Plan:
        return self._plan("purge", _ts(purge_instant(now)), parse=int)


class Invalidations:
    """This process's subscription to the fleet's revocations (Redis pub/sub).

    Every script that revokes (a session, a token, a user's generation, a
    reused refresh token) publishes the user id on ``<prefix>invalidate`` in
    the same atomic step. A daemon thread here hands each id to ``on_user``
    (the session layer forgets what it remembers of that user, so the next
    request reads the revocation). While the subscription is down, messages
    may be missed: :meth:`trusted` says whether memory may still be served,
    and ``on_all`` runs once the subscription is back (forget everything).
    """

    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store
        self._channel = store.key_prefix + "invalidate"
        self._handlers: list[tuple[Callable[[str], None], Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._live = threading.Event()
        self.lost_at: float | None = time.monotonic()  # not subscribed yet: nothing is trusted

    def subscribe(self, on_user: Callable[[str], None], on_all: Callable[[], None]) -> None:
        """Call ``on_user(user_id)`` for each revocation anywhere, ``on_all()`` when messages may
        have been missed. Starts the listening thread on first use."""
        with self._lock:
            self._handlers.append((on_user, on_all))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="federation-invalidations", daemon=True
                )
                self._thread.start()
        self._live.wait(timeout=2.0)  # the first subscription, if the server answers at once

    def trusted(self, grace: float) -> bool:
        """Whether memory may be served: subscribed, or lost at most ``grace`` seconds ago."""
        lost = self.lost_at
        return lost is None or (grace > 0 and time.monotonic() - lost <= grace)

    @property
    def live(self) -> bool:
        """True while subscribed."""
        return self.lost_at is None

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()

    def _each(self, call: Callable[[tuple[Callable[[str], None], Callable[[], None]]], None]) -> None:
        for handler in list(self._handlers):
            try:
                call(handler)
            except Exception:  # one handler's failure must not stop the others
                log.exception("an invalidation handler failed")

    def _listen(self) -> None:
        import redis

        delay = 0.05
        while not self._stop.is_set():
            pubsub = self._store.client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Back (or first) online: what was missed meanwhile is forgotten now.
                        self._each(lambda h: h[1]())
                        self.lost_at = None
                        self._live.set()
                        delay = 0.05
                    elif message["type"] == "message":
                        user_id = _text(message["data"])
                        self._each(lambda h, uid=user_id: h[0](uid))  # type: ignore[misc]
            except Exception as exc:
                # Not only RedisError: on a connection torn down under it redis-py can raise
                # others (AttributeError from its parser). Whatever it is, this thread must
                # live on, or a process would trust its memory with no revocation reaching it.
                if self._stop.is_set():
                    break
                if self.lost_at is None:
                    # What memory holds was true until now; from now on news may be missed.
                    self.lost_at = time.monotonic()
                    if isinstance(exc, redis.RedisError):
                        log.warning("revocation messages: the Redis subscription is lost; reconnecting")
                    else:
                        log.warning(
                            "revocation messages: the Redis subscription failed (%s); reconnecting",
                            type(exc).__name__,
                        )
                self._live.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: S110 - closing a broken subscription: nothing left to do
                    pass


def _unavailable(exc: Exception) -> StorageError:
    import redis

    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return RevocationUnavailable(f"the revocation store cannot be reached ({type(exc).__name__})")
    if not isinstance(exc, redis.RedisError):  # redis-py's parser on a reply it cannot read
        return RevocationUnavailable(f"the revocation store's answer cannot be read ({type(exc).__name__})")
    if isinstance(exc, redis.ResponseError) and "a session with this id exists" in str(exc):
        return StorageError("a session with this id exists")
    return StorageError(f"the revocation store failed ({type(exc).__name__})")


def _client_options(url: str) -> dict[str, Any]:
    from urllib.parse import parse_qs, urlsplit

    from ..errors import ConfigError

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            "a Redis URL starts with redis://, rediss:// or unix://", field="sessions.revocation"
        )
    # redis-py reads a database that is not a number as database 0: another app's keys.
    try:
        parts = urlsplit(url)
    except ValueError:  # never the URL in the message: it may hold a password
        raise ConfigError("not a usable Redis URL", field="sessions.revocation") from None
    databases = parse_qs(parts.query).get("db", [])
    if not url.startswith("unix://") and parts.path not in ("", "/"):
        databases.append(parts.path[1:])
    if any(not (db.isascii() and db.isdigit()) for db in databases):
        raise ConfigError(
            "the Redis URL's database must be a number (redis://host:6379/0)", field="sessions.revocation"
        )
    # Short timeouts: a revocation check waits on this, and an unreachable Redis must fail fast.
    return {"socket_timeout": 2.0, "socket_connect_timeout": 2.0, "health_check_interval": 30}


class RedisSessionStore:
    """The session store on Redis (``sessions.revocation: redis://host:6379/0``, or ``rediss://``).

    ``client`` is a ``redis.Redis`` of the application's (else one is made
    from ``url``); ``aio`` is the asyncio twin on the same server, used by
    async callers so they never wait on a thread.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        key_prefix: str = "federation:",
        retain: float = RETAIN,
        attempts_ttl: float = ATTEMPTS_TTL,
    ) -> None:
        try:
            import redis
        except ImportError:
            from ..errors import ConfigError

            raise ConfigError(
                "a Redis session store needs redis-py: pip install 'federation-bridge[redis]'",
                field="sessions.revocation",
            ) from None

        if client is None and url is None:
            raise ValueError("give a Redis url or a client")
        self.url = url
        self.key_prefix = key_prefix
        if client is None:
            try:
                client = redis.Redis.from_url(str(url), **_client_options(str(url)))
            except ValueError:  # redis-py's own message may echo the URL, password included
                from ..errors import ConfigError

                raise ConfigError("not a usable Redis URL", field="sessions.revocation") from None
        self.client = client
        self._plans = _Plans(key_prefix, retain, attempts_ttl)
        self._scripts = {
            name: self.client.register_script(_LUA_PRELUDE + body) for name, body in SCRIPTS.items()
        }
        self._async_client = async_client
        self._aio: AsyncRedisSessionStore | None = None
        self._invalidations: Invalidations | None = None
        self._invalidations_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisSessionStore:
        """A store on the Redis server at ``url``."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisSessionStore(key_prefix={self.key_prefix!r})"  # never the URL: it may hold a password

    @property
    def aio(self) -> AsyncRedisSessionStore | None:
        """The asyncio twin (same server, same keys); None for an application's sync client given
        without its asyncio one (async callers then run the sync store in a thread)."""
        if self._aio is None:
            given, url = self._async_client, self.url
            if given is None and url is None:
                return None

            def connect() -> Any:
                if given is not None:
                    return given
                import redis.asyncio

                return redis.asyncio.Redis.from_url(str(url), **_client_options(str(url)))

            self._aio = AsyncRedisSessionStore(connect, self._plans)
        return self._aio

    @property
    def invalidations(self) -> Invalidations:
        """The process's subscription to revocations made anywhere (started on first subscribe)."""
        with self._invalidations_lock:
            if self._invalidations is None:
                self._invalidations = Invalidations(self)
            return self._invalidations

    def _run(self, plan: _Plan) -> Any:

        try:
            reply = self._scripts[plan.script](args=list(plan.args), client=self.client)
        except Exception as exc:  # not only RedisError: see _unavailable
            raise _unavailable(exc) from exc
        return plan.read(reply)

    def close(self) -> None:
        """Close the connections (the ones made here; an application's client is its own)."""
        if self._invalidations is not None:
            self._invalidations.close()
        if self.url is not None:
            self.client.close()

    def ping(self) -> bool:
        """True when the server answers."""

        try:
            return bool(self.client.ping())
        except Exception:  # a RedisError, or redis-py's parser failing on a foreign answer
            return False

    # -- the protocol -------------------------------------------------------------------------

    def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        """Store a new session and its first refresh token."""
        self._run(self._plans.create_session(session, refresh))

    def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        """Present a refresh token: one script decides and writes."""
        result: RefreshUse = self._run(self._plans.use_refresh(token_hash, successor, now, grace))
        return result

    def find_refresh(self, token_hash: str) -> SessionRecord | None:
        """The session of a refresh token, or None."""
        result: SessionRecord | None = self._run(self._plans.find_refresh(token_hash))
        return result

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        result: SessionRecord | None = self._run(self._plans.get_session(session_id))
        return result

    def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        """Revoke a session (the first ``revoked_at`` stays)."""
        result: SessionRecord | None = self._run(self._plans.revoke_session(session_id, now))
        return result

    def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse an access token until it expires (a later expiry wins)."""
        self._run(self._plans.revoke_token(jti, user_id, expires_at))

    def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed (``SET NX`` with the claim's expiry)."""
        result: bool = self._run(self._plans.claim_once(key, expires_at))
        return result

    def bump_generation(self, user_id: str) -> int:
        """Increment the user's generation (``INCR``)."""
        result: int = self._run(self._plans.bump_generation(user_id))
        return result

    def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        """The user's generation, revoked live sessions and revoked unexpired jtis."""
        result: UserSessionState = self._run(self._plans.user_state(user_id, now))
        return result

    def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        """The user's live sessions, oldest first."""
        result: list[SessionRecord] = self._run(self._plans.sessions_of(user_id, now))
        return result

    def record_failure(self, key: str, *, now: datetime, max_attempts: int, lockout: float) -> AttemptState:
        """Count a failed attempt; lock at ``max_attempts`` (the rule of ``after_failure``)."""
        result: AttemptState = self._run(self._plans.record_failure(key, now, max_attempts, lockout))
        return result

    def attempts(self, key: str) -> AttemptState:
        """The attempt state under ``key``."""
        result: AttemptState = self._run(self._plans.attempts(key))
        return result

    def clear_attempts(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._run(self._plans.clear_attempts(key))

    def purge(self, *, now: datetime) -> int:
        """Delete sessions, refresh tokens and revoked jtis that ended before ``now``."""
        result: int = self._run(self._plans.purge(now))
        return result


class AsyncRedisSessionStore:
    """The asyncio twin of :class:`RedisSessionStore`: the same methods, awaited.

    An asyncio connection belongs to the event loop that opened it, so each
    running loop gets its own client (made by ``connect``) and its scripts.
    """

    def __init__(self, connect: Callable[[], Any], plans: _Plans) -> None:
        self._connect = connect
        self._plans = plans
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> tuple[Any, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            client = self._connect()
            scripts = {name: client.register_script(_LUA_PRELUDE + body) for name, body in SCRIPTS.items()}
            found = self._by_loop[loop] = (client, scripts)
        return found

    async def _run(self, plan: _Plan) -> Any:

        client, scripts = self._client()
        try:
            reply = await scripts[plan.script](args=list(plan.args), client=client)
        except Exception as exc:  # not only RedisError: see _unavailable
            raise _unavailable(exc) from exc
        return plan.read(reply)

    async def aclose(self) -> None:
        """Close this event loop's connections."""
        found = self._by_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()

    async def create_session(self, session: SessionRecord, refresh: NewRefreshToken | None) -> None:
        await self._run(self._plans.create_session(session, refresh))

    async def use_refresh(
        self, token_hash: str, successor: NewRefreshToken, *, now: datetime, grace: float
    ) -> RefreshUse:
        result: RefreshUse = await self._run(self._plans.use_refresh(token_hash, successor, now, grace))
        return result

    async def find_refresh(self, token_hash: str) -> SessionRecord | None:
        result: SessionRecord | None = await self._run(self._plans.find_refresh(token_hash))
        return result

    async def get_session(self, session_id: str) -> SessionRecord | None:
        result: SessionRecord | None = await self._run(self._plans.get_session(session_id))
        return result

    async def revoke_session(self, session_id: str, *, now: datetime) -> SessionRecord | None:
        result: SessionRecord | None = await self._run(self._plans.revoke_session(session_id, now))
        return result

    async def revoke_token(self, jti: str, *, user_id: str, expires_at: datetime) -> None:
        await self._run(self._plans.revoke_token(jti, user_id, expires_at))

    async def claim_once(self, key: str, *, expires_at: datetime) -> bool:
        result: bool = await self._run(self._plans.claim_once(key, expires_at))
        return result

    async def bump_generation(self, user_id: str) -> int:
        result: int = await self._run(self._plans.bump_generation(user_id))
        return result

    async def user_state(self, user_id: str, *, now: datetime) -> UserSessionState:
        result: UserSessionState = await self._run(self._plans.user_state(user_id, now))
        return result

    async def sessions_of(self, user_id: str, *, now: datetime) -> Sequence[SessionRecord]:
        result: list[SessionRecord] = await self._run(self._plans.sessions_of(user_id, now))
        return result

    async def record_failure(
        self, key: str, *, now: datetime, max_attempts: int, lockout: float
    ) -> AttemptState:
        result: AttemptState = await self._run(self._plans.record_failure(key, now, max_attempts, lockout))
        return result

    async def attempts(self, key: str) -> AttemptState:
        result: AttemptState = await self._run(self._plans.attempts(key))
        return result

    async def clear_attempts(self, key: str) -> None:
        await self._run(self._plans.clear_attempts(key))

    async def purge(self, *, now: datetime) -> int:
        result: int = await self._run(self._plans.purge(now))
        return result
