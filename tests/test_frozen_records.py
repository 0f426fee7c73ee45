"""The records built for every verified token keep the frozen dataclass's contract
after their ``__init__`` is replaced by the cheaper one (federation.frozen)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from federation import VerifiedToken
from federation._rfc7515 import CompactJWS
from federation.frozen import fast_init, record_factory
from federation.sessions import AccessClaims, Principal
from federation.spi import Identity, TokenContext
from federation.testing import MockIdP


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    x: int
    y: int = 7
    label: str = "p"


@dataclasses.dataclass(frozen=True, slots=True)
class _PlainPoint:
    x: int
    y: int = 7
    label: str = "p"


def test_fast_init_keeps_signature_defaults_and_keywords() -> None:
    assert _Point.__init__ is not _PlainPoint.__init__
    assert inspect.signature(_Point) == inspect.signature(_PlainPoint)
    assert _Point(1) == _Point(x=1, y=7, label="p")
    assert (_Point(1, 2).x, _Point(1, 2).y, _Point(1, label="q").label) == (1, 2, "q")
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Point(1, z=3)  # type: ignore[call-arg]


def test_fast_init_records_stay_frozen_and_replaceable() -> None:
    point = _Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]
    assert dataclasses.replace(point, y=3) == _Point(1, 3)
    assert hash(point) == hash(_Point(1, 2))
    assert repr(point) == "_Point(x=1, y=2, label='p')"


@dataclasses.dataclass(frozen=True, slots=True)
class _WithFactory:
    items: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class _WithPostInit:
    x: int

    def __post_init__(self) -> None:
        pass


@dataclasses.dataclass(slots=True)
class _NotFrozen:
    x: int


@dataclasses.dataclass(frozen=True)
class _WithoutSlots:
    x: int


@dataclasses.dataclass(frozen=True, slots=True)
class _KeywordOnly:
    x: int
    y: int = dataclasses.field(default=0, kw_only=True)


@dataclasses.dataclass(frozen=True, slots=True)
class _NotInInit:
    x: int
    y: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass(frozen=True, slots=True)
class _WithInitVar:
    x: int
    scale: dataclasses.InitVar[int] = 1


@pytest.mark.parametrize("cls", [_WithFactory, _WithPostInit, _NotFrozen, _WithoutSlots, _KeywordOnly])
def test_fast_init_refuses_what_it_cannot_reproduce(cls: type) -> None:
    with pytest.raises(TypeError):
        fast_init(cls)


@pytest.mark.parametrize("cls", [_NotFrozen, _WithoutSlots, _KeywordOnly, _NotInInit, _WithInitVar])
def test_record_factory_refuses_what_it_cannot_reproduce(cls: type) -> None:
    with pytest.raises(TypeError):
        record_factory(cls)


@dataclasses.dataclass(frozen=True, slots=True)
class _Normalised:
    name: str
    tags: frozenset[str] = frozenset()
    seen: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", frozenset(self.tags))


_make_normalised = record_factory(_Normalised)


def test_record_factory_applies_default_factories_and_post_init_as_the_class_does() -> None:
    made, called = _make_normalised("a", ["x", "y"]), _Normalised("a", ["x", "y"])  # type: ignore[arg-type]
    assert type(made) is _Normalised and made == called
    assert made.tags == frozenset({"x", "y"}) and type(made.tags) is frozenset
    assert made.seen == [] and made.seen is not _make_normalised("b").seen  # a fresh list each time
    given = ["z"]
    assert _make_normalised("c", seen=given).seen is given
    assert list(inspect.signature(_make_normalised).parameters) == ["name", "tags", "seen"]


@pytest.mark.parametrize("cls", [VerifiedToken, Identity, TokenContext, CompactJWS, AccessClaims, Principal])
def test_the_verification_records_use_it_and_stay_frozen(cls: type) -> None:
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert "_set0" in cls.__init__.__globals__  # fast_init's own, not the dataclass's
    assert dataclasses.is_dataclass(cls)
    params = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == params


_make_point = record_factory(_PlainPoint)


def test_record_factory_makes_the_class_own_record() -> None:
    point = _make_point(1, label="q")
    assert type(point) is _PlainPoint
    assert point == _PlainPoint(1, label="q")
    assert (point.x, point.y, point.label) == (1, 7, "q")
    assert hash(point) == hash(_PlainPoint(1, 7, "q"))
    assert repr(point) == "_PlainPoint(x=1, y=7, label='q')"
    assert dataclasses.replace(point, y=3) == _PlainPoint(1, 3, "q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.label  # type: ignore[misc]
    assert list(inspect.signature(_make_point).parameters) == ["x", "y", "label"]
    with pytest.raises(TypeError):
        _make_point()
    with pytest.raises(TypeError):
        _make_point(1, z=3)


def test_record_factory_refuses_a_record_on_another_class() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived(_PlainPoint):
        z: int = 0

    with pytest.raises(TypeError):
        record_factory(Derived)


def test_the_hot_path_records_are_the_public_classes() -> None:
    """What the verifier and the generic identity make with their factories is the
    public record itself, frozen, equal to one built by calling the class."""
    idp = MockIdP()
    vt = idp.bridge().verify(idp.mint(sub="u-2", email="b@example.com", groups=["g"]))
    assert type(vt) is VerifiedToken
    assert type(vt.identity) is Identity
    assert vt == VerifiedToken(**{f.name: getattr(vt, f.name) for f in dataclasses.fields(VerifiedToken)})
    assert vt.identity == Identity((vt.issuer, "u-2"), "b@example.com", False, None, ("g",), ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        vt.identity.groups = ()  # type: ignore[misc]


def test_a_verified_token_is_read_only_through_and_through() -> None:
    idp = MockIdP()
    vt = idp.bridge().verify(idp.mint(sub="u-1", email="a@example.com", email_verified=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        vt.subject = "someone-else"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        vt.identity.email_verified = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        vt.claims["sub"] = "x"  # type: ignore[index]
    assert dataclasses.replace(vt.identity, email=None).email is None
    assert vt.identity == Identity(key=(vt.issuer, "u-1"), email="a@example.com", email_verified=True)


def test_a_login_returns_the_public_records_frozen(tmp_path: Path) -> None:
    """The records a login of an existing user makes with factories (the login read's user and
    identity, the result, its audit events) are the public classes, normalised and frozen."""
    from types import MappingProxyType

    from federation.provisioning import LoginResult
    from federation.storage import AuditEvent, SQLStore, User, UserIdentity

    idp = MockIdP()
    with SQLStore(f"sqlite:///{tmp_path / 'users.db'}") as store:
        bridge = idp.bridge(store=store)
        bridge.login(idp.mint(sub="u-3", email="c@example.com"))
        result = bridge.login(idp.mint(sub="u-3", email="c@example.com"))
    assert type(result) is LoginResult and not result.created and result.changes == {}
    assert type(result.user) is User and type(result.identity) is UserIdentity
    assert type(result.user.roles) is frozenset and type(result.user.attributes) is MappingProxyType
    assert result.events and all(type(e) is AuditEvent for e in result.events)
    assert all(type(e.detail) is MappingProxyType for e in result.events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.user.roles = frozenset({"admin"})  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.created = True  # type: ignore[misc]
