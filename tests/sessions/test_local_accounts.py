"""Local password accounts: registration, password login, lockout, no enumeration, rehash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher, Type

from federation import Bridge
from federation.errors import (
    AccountDisabled,
    AccountExists,
    AccountLocked,
    ConfigError,
    InvalidCredentials,
    InvalidUserData,
    RegistrationClosed,
)
from federation.sessions import generate_private_key_pem
from federation.storage import AuditEvent, MemoryStore
from federation.testing import FrozenClock, MockIdP

_PEM = generate_private_key_pem("ES256").decode()
#: Cheap parameters for the suite's speed; one test checks the shipped ones.
_FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=16, type=Type.ID)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def audit() -> list[AuditEvent]:
    return []


@pytest.fixture
def make_bridge(clock: FrozenClock, audit: list[AuditEvent]) -> Iterator[Callable[..., Bridge]]:
    built: list[Bridge] = []

    def factory(
        local: dict[str, Any] | None = None, *, fast: bool = True, mapping: Any = None, store: Any = None
    ) -> Bridge:
        idp = MockIdP(issuer="https://idp.test", alg="ES256", clock=clock)
        config = idp.bridge_config(
            sessions={"issuer": "https://app.test", "keys": [{"env": "K"}]},
            local_accounts={"max_attempts": 3, "lockout": 60, **(local or {})},
        )
        if mapping is not None:
            config["mapping"] = mapping
        bridge = idp.bridge(
            config=config, store=store or MemoryStore(), environ={"K": _PEM}, audit=audit.append
        )
        if fast:
            bridge.sessions.passwords._hasher = _FAST  # type: ignore[union-attr]
            bridge.sessions.passwords._dummy = _FAST.hash("x")  # type: ignore[union-attr]
        built.append(bridge)
        return bridge

    yield factory
    for bridge in built:
        bridge.close()


def test_register_then_sign_in_by_username_or_email(
    make_bridge: Callable[..., Bridge], audit: list[AuditEvent]
) -> None:
    bridge = make_bridge(mapping={"version": 1, "roles": {"sync": "additive", "default": ["member"]}})
    user = bridge.register_local(username="Alice", email="Alice@Example.test", password=PASSWORD)
    assert user.username == "Alice" and user.roles == {"member"} and user.status == "active"
    for login in ("alice", "ALICE", "alice@example.test"):
        session = bridge.password_login(login, PASSWORD)
        principal = bridge.authenticate(session.access_token)
        assert principal.user.id == user.id and principal.roles == {"member"}
    assert [e.name for e in audit].count("session_issued") == 3
    stored = bridge.store.find_credential("alice")  # type: ignore[union-attr]
    assert stored is not None and stored[0].password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(audit)


def test_a_password_is_the_same_whichever_way_its_accents_were_typed(
    make_bridge: Callable[..., Bridge],
) -> None:
    """NFC (RFC 8265 §4.2, NIST SP 800-63B §5.1.1.2): "é" composed and "e" with a combining
    accent are one password; a hash made of the decomposed form before still verifies."""
    composed, decomposed = "caf\u00e9-password-1", "cafe\u0301-password-1"
    bridge = make_bridge()
    bridge.register_local(username="zoe", password=composed)
    assert bridge.password_login("zoe", decomposed).user.username == "zoe"
    assert bridge.password_login("zoe", composed).user.username == "zoe"
    passwords = bridge.sessions.passwords
    assert passwords is not None
    legacy = passwords.hasher.hash(decomposed)  # what an earlier release stored, as typed
    assert passwords.verify(legacy, decomposed) and passwords.verify(legacy, composed) is False
    with pytest.raises(InvalidCredentials):
        bridge.password_login("zoe", "cafe-password-1")


def test_a_hash_of_a_password_as_typed_before_nfc_is_made_again_at_sign_in(
    make_bridge: Callable[..., Bridge],
) -> None:
    """A hash an earlier release made of the decomposed form verifies only as typed; the
    first sign-in with it stores the NFC hash, so the other keyboard's form signs in too."""
    composed, decomposed = "caf\u00e9-password-2", "cafe\u0301-password-2"
    bridge = make_bridge()
    user = bridge.register_local(username="yann", password=composed)
    passwords = bridge.sessions.passwords
    assert passwords is not None
    bridge.store.set_password_hash(user.id, passwords.hasher.hash(decomposed), now=bridge.now())  # type: ignore[union-attr]
    with pytest.raises(InvalidCredentials):
        bridge.password_login("yann", composed)
    assert bridge.password_login("yann", decomposed).user.id == user.id
    stored = bridge.store.find_credential("yann")[0].password_hash  # type: ignore[union-attr,index]
    assert passwords.hasher.verify(stored, composed)
    assert bridge.password_login("yann", composed).user.id == user.id


def test_registration_refuses_duplicates_and_bad_input(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    bridge.register_local(username="bob", email="bob@example.test", password=PASSWORD)
    with pytest.raises(AccountExists):
        bridge.register_local(username="BOB", password=PASSWORD)
    with pytest.raises(AccountExists):
        bridge.register_local(username="bobby", email="BOB@example.test", password=PASSWORD)
    for bad in (
        {"username": "", "password": PASSWORD},
        {"username": "a b", "password": PASSWORD},
        {"username": "x@y", "password": PASSWORD},
        {"username": "eve", "password": "short"},
        {"username": "eve", "email": "not-an-email", "password": PASSWORD},
        {"username": "eve", "password": "x" * 2000},
    ):
        with pytest.raises(InvalidUserData):
            bridge.register_local(**bad)
    assert len(bridge.store.users()) == 1  # type: ignore[union-attr]


def test_registration_can_be_closed(make_bridge: Callable[..., Bridge]) -> None:
    with pytest.raises(RegistrationClosed):
        make_bridge({"registration": False}).register_local(username="carol", password=PASSWORD)


def test_unknown_account_and_wrong_password_are_the_same_error(
    make_bridge: Callable[..., Bridge], audit: list[AuditEvent]
) -> None:
    bridge = make_bridge({"max_attempts": 100})
    bridge.register_local(username="dave", password=PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        bridge.password_login("dave", "not the password at all")
    with pytest.raises(InvalidCredentials) as unknown:
        bridge.password_login("nobody", PASSWORD)
    assert (wrong.value.code, str(wrong.value)) == (unknown.value.code, str(unknown.value))
    assert wrong.value.code == "invalid_credentials"
    assert [e.name for e in audit].count("password_login_failed") == 2


def _count_verifications(bridge: Bridge) -> list[str]:
    """The hashes each argon2 verification of ``bridge`` from now on checks against."""
    calls: list[str] = []
    hasher = bridge.sessions.passwords._hasher  # type: ignore[union-attr]

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, digest: str, password: str) -> bool:
            calls.append(digest)
            return hasher.verify(digest, password)

    bridge.sessions.passwords._hasher = Counting()  # type: ignore[union-attr]
    return calls


def test_unknown_accounts_pay_for_one_verification(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge({"max_attempts": 100})
    calls = _count_verifications(bridge)
    with pytest.raises(InvalidCredentials):
        bridge.password_login("ghost", PASSWORD)
    assert len(calls) == 1  # the dummy hash: an unknown login costs a verification too


def test_a_decomposed_password_costs_the_same_for_known_and_unknown_accounts(
    make_bridge: Callable[..., Bridge],
) -> None:
    """The fallback to the password as typed ran for existing accounts only: two argon2
    verifications against one told who exists."""
    bridge = make_bridge({"max_attempts": 100})
    bridge.register_local(username="known", password=PASSWORD)
    calls = _count_verifications(bridge)
    costs = []
    for login in ("known", "ghost"):
        calls.clear()
        with pytest.raises(InvalidCredentials):
            bridge.password_login(login, "cafe\u0301-wrong-password")
        costs.append(len(calls))
    assert costs == [2, 2]


def test_lockout_per_account_doubles_and_is_audited(
    make_bridge: Callable[..., Bridge], clock: FrozenClock, audit: list[AuditEvent]
) -> None:
    bridge = make_bridge()
    bridge.register_local(username="erin", password=PASSWORD)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            bridge.password_login("erin", "wrong password here")
    with pytest.raises(AccountLocked) as locked:
        bridge.password_login("erin", PASSWORD)  # even the right password, while locked
    assert locked.value.code == "account_locked" and locked.value.retry_after == pytest.approx(60)
    assert "account_locked" in [e.name for e in audit]
    clock.advance(61)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            bridge.password_login("erin", "wrong password here")
    clock.advance(61)
    with pytest.raises(AccountLocked) as again:
        bridge.password_login("erin", PASSWORD)  # the second lockout lasts 120 s
    assert again.value.retry_after == pytest.approx(59)
    clock.advance(60)
    assert bridge.password_login("erin", PASSWORD).user.username == "erin"


def test_an_account_has_one_count_and_one_lock_whichever_login_is_typed(
    make_bridge: Callable[..., Bridge],
) -> None:
    """Username and email each had their own counter: twice the guesses, and the email
    signed in while the username was locked."""
    bridge = make_bridge()
    bridge.register_local(username="gina", email="gina@example.test", password=PASSWORD)
    for login in ("gina", "GINA@example.test"):
        with pytest.raises(InvalidCredentials):
            bridge.password_login(login, "wrong password here")
    with pytest.raises(InvalidCredentials):
        bridge.password_login("gina@example.test", "wrong password here")  # the third: locked now
    for login in ("gina", "gina@example.test"):
        with pytest.raises(AccountLocked):
            bridge.password_login(login, PASSWORD)


def test_failures_that_land_during_a_lockout_neither_extend_it_nor_double_it(
    make_bridge: Callable[..., Bridge], clock: FrozenClock
) -> None:
    """Parallel guesses that began before the lock (the hash is slow) and failed after it
    each started a new, doubled lockout: one burst of 60 locked an account for days."""
    bridge = make_bridge()
    bridge.register_local(username="hal", password=PASSWORD)
    store = bridge.sessions.store
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            bridge.password_login("hal", "wrong password here")
    user_key = next(k for k in store._attempts if k.startswith("account:user:"))  # type: ignore[attr-defined]
    locked = store.attempts(user_key)
    for _ in range(20):  # what the stragglers of a burst record, all within the lockout
        store.record_failure(
            user_key, now=datetime.fromtimestamp(clock(), timezone.utc), max_attempts=3, lockout=60
        )
    assert store.attempts(user_key) == locked
    clock.advance(61)
    assert bridge.password_login("hal", PASSWORD).user.username == "hal"


def test_a_password_that_is_not_text_is_refused_as_a_wrong_one(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    bridge.register_local(username="ivy", password=PASSWORD)
    with pytest.raises(InvalidUserData, match="not text"):
        bridge.register_local(username="jo", password="\ud800" * 12)
    for login in ("ivy", "nobody"):
        with pytest.raises(InvalidCredentials):  # before: UnicodeEncodeError out of argon2
            bridge.password_login(login, "\ud800" * 12)
    with pytest.raises(InvalidCredentials):
        asyncio.run(bridge.apassword_login("ivy", "\ud800" * 12))


def test_unknown_accounts_lock_too(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            bridge.password_login("nobody-here", PASSWORD)
    with pytest.raises(AccountLocked):  # as an existing account would: no enumeration by lockout
        bridge.password_login("nobody-here", PASSWORD)


def test_lockout_per_client_address(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    bridge.register_local(username="frank", password=PASSWORD)
    for name in ("a1", "a2", "a3"):  # spraying different accounts from one address
        with pytest.raises(InvalidCredentials):
            bridge.password_login(name, PASSWORD, client_address="203.0.113.9")
    with pytest.raises(AccountLocked):
        bridge.password_login("frank", PASSWORD, client_address="203.0.113.9")
    assert bridge.password_login("frank", PASSWORD, client_address="198.51.100.1").user.username == "frank"


def test_a_disabled_local_account_is_refused(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    user = bridge.register_local(username="gina", password=PASSWORD)
    from federation.storage import UpdateUser, call, drive

    def plan() -> Any:
        yield from call(UpdateUser(user.id, {"status": "disabled"}))

    with bridge.store.transaction() as tx:  # type: ignore[union-attr]
        drive(plan(), tx)
    with pytest.raises(AccountDisabled):
        bridge.password_login("gina", PASSWORD)


def test_a_hash_with_old_parameters_is_rehashed_on_sign_in(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()
    bridge.register_local(username="hank", password=PASSWORD)
    old = bridge.store.find_credential("hank")[0].password_hash  # type: ignore[union-attr,index]
    stronger = PasswordHasher(
        time_cost=2, memory_cost=16, parallelism=1, hash_len=16, salt_len=16, type=Type.ID
    )
    bridge.sessions.passwords._hasher = stronger  # type: ignore[union-attr]
    bridge.password_login("hank", PASSWORD)
    new = bridge.store.find_credential("hank")[0].password_hash  # type: ignore[union-attr,index]
    assert new != old and not stronger.check_needs_rehash(new)
    assert bridge.password_login("hank", PASSWORD).user.username == "hank"


def test_the_shipped_parameters_are_rfc_9106s(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge(fast=False)
    user = bridge.register_local(username="ivan", password=PASSWORD)
    digest = bridge.store.find_credential("ivan")[0].password_hash  # type: ignore[union-attr,index]
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert bridge.password_login("ivan", PASSWORD).user.id == user.id


def test_async_twins(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge()

    async def scenario() -> None:
        user = await bridge.aregister_local(username="judy", password=PASSWORD)
        session = await bridge.apassword_login("judy", PASSWORD)
        assert (await bridge.aauthenticate(session.access_token)).user.id == user.id
        with pytest.raises(InvalidCredentials):
            await bridge.apassword_login("judy", "wrong wrong wrong")

    asyncio.run(scenario())


def test_local_accounts_need_sessions() -> None:
    from federation.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config({"issuers": [{"issuer": "https://idp.test", "audiences": ["a"]}], "local_accounts": {}})
    assert "sessions" in str(caught.value)
