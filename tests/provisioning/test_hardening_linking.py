"""Issue 10 §2, identity and linking: account pre-hijacking through an issuer not trusted
for emails, and racing first logins with ``link_by_email`` on every shipped store.

Pre-hijacking: an attacker signs up through an issuer marked ``trust_email: false`` with
the victim's address and ``email_verified: true``. The stored ``User.email_verified`` is
only ever raised by an issuer trusted for emails, so the victim's later login through a
trusted issuer finds an account whose email is not verified and is refused
(``link_refused``, ``target_email_not_verified``): never linked into the attacker's account.

Races: under READ COMMITTED (PostgreSQL) a first login that read "no identity" can then
read the winner's committed user and identity among its email candidates; that is a
conflict to retry, never an ``issuer_already_linked`` refusal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from _prov_helpers import AuditLog

from federation.errors import LinkRefused
from federation.testing import FrozenClock, MockIdP

LINK = {"link_by_email": True}
VICTIM = "victim@example.com"


@pytest.fixture
def trusted(clock: FrozenClock) -> MockIdP:
    """Issuer T: marked trust_email (it owns the domains it vouches for)."""
    return MockIdP(issuer="https://trusted-idp.test", audience="my-client", alg="ES256", clock=clock)


def _bridge(login_bridge: Any, store: Any, trusted: MockIdP, **options: Any) -> Any:
    """``idp`` (https://idp.test) is issuer U, not trusted for emails; ``trusted`` is T."""
    return login_bridge(
        store,
        provisioning=options.pop("provisioning", LINK),
        issuer={"trust_email": False},
        idps=[(trusted, {"trust_email": True})],
        **options,
    )


def _identities(store: Any, user_id: str) -> list[tuple[str, str]]:
    with store.transaction() as tx:
        return [i.key for i in tx.identities_of(user_id)]


# -- 1. account pre-hijacking -------------------------------------------------------------


def test_an_untrusted_issuer_never_sets_the_stored_email_verified(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any
) -> None:
    bridge = _bridge(login_bridge, store, trusted)
    attacker = bridge.login(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    assert attacker.created and attacker.token.email_verified  # the token says so...
    assert attacker.user.email_verified is False  # ...but U is not trusted to vouch for emails
    with store.transaction() as tx:
        assert tx.get_user(attacker.user.id).email_verified is False


def test_pre_hijacking_through_an_untrusted_issuer_is_refused(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any, audit: AuditLog
) -> None:
    bridge = _bridge(login_bridge, store, trusted)
    attacker = bridge.login(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    audit.clear()
    with pytest.raises(LinkRefused) as caught:
        bridge.login(trusted.mint(sub="victim", email=VICTIM, email_verified=True))
    assert caught.value.code == "link_refused" and caught.value.reason == "target_email_not_verified"
    assert caught.value.user_id == attacker.user.id
    # nothing written: the attacker's account holds only the attacker's identity
    assert _identities(store, attacker.user.id) == [("https://idp.test", "attacker")]
    with store.transaction() as tx:
        assert tx.find_identity("https://trusted-idp.test", "victim") is None
    assert audit.names() == ["login_failed"]
    assert audit[0].detail == {"reason": "link_refused", "rule": "target_email_not_verified"}


@pytest.mark.anyio
async def test_pre_hijacking_through_an_untrusted_issuer_is_refused_async(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any
) -> None:
    bridge = _bridge(login_bridge, store, trusted)
    attacker = await bridge.alogin(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    assert attacker.user.email_verified is False
    with pytest.raises(LinkRefused) as caught:
        await bridge.alogin(trusted.mint(sub="victim", email=VICTIM, email_verified=True))
    assert caught.value.reason == "target_email_not_verified"
    assert _identities(store, attacker.user.id) == [("https://idp.test", "attacker")]


@pytest.mark.anyio
async def test_pre_hijacking_on_a_native_async_store(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP
) -> None:
    """MemoryStore is also a native async store: the plan driven with await refuses alike."""
    from federation.storage import MemoryStore

    store = MemoryStore()
    bridge = _bridge(login_bridge, store, trusted)
    attacker = await bridge.alogin(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    with pytest.raises(LinkRefused) as caught:
        await bridge.alogin(trusted.mint(sub="victim", email=VICTIM, email_verified=True))
    assert caught.value.reason == "target_email_not_verified"
    assert [i.key for i in store.identities()] == [("https://idp.test", "attacker")]
    assert attacker.user.id == store.users()[0].id


def test_an_update_through_an_untrusted_issuer_never_raises_the_flag(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any
) -> None:
    bridge = _bridge(login_bridge, store, trusted)
    first = bridge.login(idp.mint(sub="attacker", email="other@example.com", email_verified=False))
    assert first.user.email_verified is False
    # the attacker's issuer now claims the victim's address, verified
    changed = bridge.login(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    assert changed.user.email == VICTIM and changed.user.email_verified is False
    assert "email_verified" not in changed.changes
    again = bridge.login(idp.mint(sub="attacker", email=VICTIM, email_verified=True))
    assert again.user.email_verified is False and "email_verified" not in again.changes
    with pytest.raises(LinkRefused) as caught:
        bridge.login(trusted.mint(sub="victim", email=VICTIM, email_verified=True))
    assert caught.value.reason == "target_email_not_verified"


def test_a_trusted_issuer_still_vouches_and_links(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any, clock: FrozenClock
) -> None:
    """The other side of the rule: a trusted issuer raises the flag, and then linking works."""
    other = MockIdP(issuer="https://trusted-two.test", audience="my-client", alg="ES256", clock=clock)
    bridge = login_bridge(
        store,
        provisioning=LINK,
        issuer={"trust_email": False},
        idps=[(trusted, {"trust_email": True}), (other, {"trust_email": True})],
    )
    home = bridge.login(trusted.mint(sub="victim", email=VICTIM, email_verified=False))
    assert home.user.email_verified is False
    verified = bridge.login(trusted.mint(sub="victim", email=VICTIM, email_verified=True))
    assert verified.changes == {"email_verified": (False, True)} and verified.user.email_verified
    # an untrusted issuer neither links nor lowers nor raises anything
    with pytest.raises(LinkRefused) as caught:
        bridge.login(idp.mint(sub="u-1", email=VICTIM, email_verified=True))
    assert caught.value.reason == "issuer_not_trusted"
    linked = bridge.login(other.mint(sub="t2", email=VICTIM, email_verified=True))
    assert linked.linked and linked.user.id == home.user.id


def test_an_untrusted_issuer_keeps_but_never_raises_a_vouched_flag(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any
) -> None:
    """A user whose email a trusted issuer vouched for, logging in through an identity of an
    issuer no longer trusted (its entry changed): the same address keeps its flag, a new
    address is unverified."""
    vouched = login_bridge(store, issuer={"trust_email": True}).login(
        idp.mint(sub="u", email=VICTIM, email_verified=True)
    )
    assert vouched.user.email_verified
    untrusted = login_bridge(store, issuer={"trust_email": False})
    same = untrusted.login(idp.mint(sub="u", email=VICTIM, email_verified=False))
    assert same.user.email_verified and "email_verified" not in same.changes
    moved = untrusted.login(idp.mint(sub="u", email="new@example.com", email_verified=True))
    assert moved.changes["email_verified"] == (True, False) and not moved.user.email_verified
    back = untrusted.login(idp.mint(sub="u", email=VICTIM, email_verified=True))
    assert not back.user.email_verified


# -- 3. concurrent first logins with link_by_email ------------------------------------------

N = 20
NEWCOMER = {"sub": "newcomer", "email": "new@example.com", "email_verified": True, "name": "New Comer"}


class _ReadThenWait:
    """A store proxy that forces READ COMMITTED's window: the first transaction reads "no
    such identity", then waits until another transaction has committed; only then does it
    read the email candidates (and sees the winner's user and identity among them).

    Only for stores whose transactions do not exclude each other (PostgreSQL): SQLite's
    BEGIN IMMEDIATE and the memory store's lock make this interleaving impossible.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.slow_taken = False
        self.slow_read = threading.Event()
        self.committed = threading.Event()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.lock:
            slow, self.slow_taken = not self.slow_taken, True
        if not slow:
            assert self.slow_read.wait(20)  # start only once the slow one has read
        with self.store.transaction() as tx:
            yield _SlowTx(tx, self) if slow else tx
        if not slow:
            self.committed.set()


class _SlowTx:
    def __init__(self, tx: Any, owner: _ReadThenWait) -> None:
        self._tx = tx
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def find_identity(self, issuer: str, subject: str) -> Any:
        found = self._tx.find_identity(issuer, subject)
        self._owner.slow_read.set()
        assert self._owner.committed.wait(20)  # the other login commits in between
        return found


def _link_bridge(login_bridge: Any, store: Any, *, link: bool = True) -> Any:
    return login_bridge(
        store, provisioning={"link_by_email": link}, issuer={"trust_email": True}, audit=lambda e: None
    )


def _home(login_bridge: Any, store: Any, trusted: MockIdP) -> Any:
    """An existing user with the newcomer's verified email, at another (trusted) issuer."""
    bridge = login_bridge(store, idps=[(trusted, {"trust_email": True})], issuer={"trust_email": True})
    return bridge.login(trusted.mint(sub="home", email="new@example.com", email_verified=True))


def _same_user(results: list[Any], store: Any, home: Any = None) -> None:
    assert len({r.user.id for r in results}) == 1, "every racer is the same user"
    user_id = results[0].user.id
    expected = [("https://idp.test", "newcomer")]
    if home is not None:
        assert user_id == home.user.id
        assert sum(r.linked for r in results) == 1 and not any(r.created for r in results)
        expected = sorted([*expected, ("https://trusted-idp.test", "home")])
    else:
        assert sum(r.created for r in results) == 1
    assert _identities(store, user_id) == expected
    with store.transaction() as tx:
        assert [u.id for u in tx.find_users_by_email("new@example.com")] == [user_id]


@pytest.mark.parametrize("existing", [False, True], ids=["new-user", "link-to-existing"])
def test_a_login_that_sees_the_winners_commit_retries_instead_of_refusing(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, make_store: Any, existing: bool
) -> None:
    """PostgreSQL, READ COMMITTED: the loser read "no identity" before the winner committed
    and its email candidates after: the winner's identity of this very issuer is among them.
    That is the identity appearing concurrently (retry: it is found), not a second identity
    of the issuer (issuer_already_linked)."""
    store = make_store("postgres")
    home = _home(login_bridge, store, trusted) if existing else None
    racing = _ReadThenWait(store)
    bridge = login_bridge(
        racing,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(trusted, {"trust_email": True})],
    )
    token = idp.mint(NEWCOMER)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result() for f in [pool.submit(bridge.login, token) for _ in range(2)]]
    assert racing.committed.is_set()
    _same_user(results, store, home)


@pytest.mark.anyio
@pytest.mark.parametrize("existing", [False, True], ids=["new-user", "link-to-existing"])
async def test_a_login_that_sees_the_winners_commit_retries_async(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, make_store: Any, existing: bool
) -> None:
    store = make_store("postgres")
    home = _home(login_bridge, store, trusted) if existing else None
    racing = _ReadThenWait(store)
    bridge = login_bridge(
        racing,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(trusted, {"trust_email": True})],
    )
    token = idp.mint(NEWCOMER)
    results = await asyncio.gather(bridge.alogin(token), bridge.alogin(token))
    _same_user(list(results), store, home)


@pytest.mark.parametrize("link", [True, False], ids=["linking", "no-linking"])
@pytest.mark.parametrize("existing", [False, True], ids=["new-user", "existing-user"])
def test_twenty_racing_first_logins_are_one_user(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any, link: bool, existing: bool
) -> None:
    home = _home(login_bridge, store, trusted) if existing else None
    bridge = login_bridge(
        store,
        provisioning={"link_by_email": link},
        issuer={"trust_email": True},
        idps=[(trusted, {"trust_email": True})],
    )
    bridge.warm_up()
    token = idp.mint(NEWCOMER)
    if existing and not link:
        home = None  # linking off: the newcomer is a user of its own
        with store.transaction() as tx:
            assert len(tx.find_users_by_email("new@example.com")) == 1
    barrier = threading.Barrier(N)

    def run() -> Any:
        barrier.wait()
        return bridge.login(token)

    with ThreadPoolExecutor(max_workers=N) as pool:
        results = [f.result() for f in [pool.submit(run) for _ in range(N)]]
    if existing and not link:
        assert len({r.user.id for r in results}) == 1 and sum(r.created for r in results) == 1
        assert _identities(store, results[0].user.id) == [("https://idp.test", "newcomer")]
    else:
        _same_user(results, store, home)


@pytest.mark.anyio
@pytest.mark.parametrize("link", [True, False], ids=["linking", "no-linking"])
async def test_twenty_racing_first_login_tasks_are_one_user(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, store: Any, link: bool
) -> None:
    home = _home(login_bridge, store, trusted) if link else None
    bridge = login_bridge(
        store,
        provisioning={"link_by_email": link},
        issuer={"trust_email": True},
        idps=[(trusted, {"trust_email": True})],
    )
    await bridge.awarm_up()
    token = idp.mint(NEWCOMER)
    results = list(await asyncio.gather(*(bridge.alogin(token) for _ in range(N))))
    if home is None:
        _same_user(results, store)
    else:
        _same_user(results, store, home)


class _EmailReadThenWait(_ReadThenWait):
    """A store proxy holding the first transaction that reads an address's users (none
    yet) open for up to ``hold`` seconds, or until the other login's transaction commits;
    the other one reads only after it."""

    def __init__(self, store: Any, hold: float) -> None:
        super().__init__(store)
        self.hold = hold

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.store.transaction() as tx:
            wrapped = _EmailSlowTx(tx, self)
            yield wrapped
        if wrapped.raced:
            self.committed.set()


class _EmailSlowTx:
    def __init__(self, tx: Any, owner: _EmailReadThenWait) -> None:
        self._tx = tx
        self._owner = owner
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def find_users_by_email(self, email_key: str) -> Any:
        owner = self._owner
        with owner.lock:
            slow, owner.slow_taken = not owner.slow_taken, True
        if not slow:
            assert owner.slow_read.wait(20)
            self.raced = True
            return self._tx.find_users_by_email(email_key)
        found = self._tx.find_users_by_email(email_key)
        owner.slow_read.set()
        owner.committed.wait(owner.hold)  # the other login may commit meanwhile
        return found


def test_first_logins_of_one_address_at_two_issuers_make_one_user_on_postgres(
    login_bridge: Any, idp: MockIdP, trusted: MockIdP, make_store: Any
) -> None:
    """READ COMMITTED: both transactions read no user with the address, and both created
    one; every later link by that address was then ambiguous. The second now waits on a
    lock of the address until the first commits, and links."""
    store = make_store("postgres")
    racing = _EmailReadThenWait(store, hold=1.0)
    bridge = login_bridge(
        racing,
        provisioning={"link_by_email": True},
        issuer={"trust_email": True},
        idps=[(trusted, {"trust_email": True})],
    )
    claims = {"email": "new@example.com", "email_verified": True}
    tokens = [idp.mint(sub="at-u", **claims), trusted.mint(sub="at-t", **claims)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result() for f in [pool.submit(bridge.login, token) for token in tokens]]
    assert len({r.user.id for r in results}) == 1
    assert sum(r.created for r in results) == 1 and sum(r.linked for r in results) == 1
    assert _identities(store, results[0].user.id) == [
        ("https://idp.test", "at-u"),
        ("https://trusted-idp.test", "at-t"),
    ]
