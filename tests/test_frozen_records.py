"""The records built for every verified token keep the frozen dataclass's contract
after their ``__init__`` is replaced by the cheaper one (federation._frozen)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from federation import VerifiedToken
from federation._frozen import fast_init
from federation._rfc7515 import CompactJWS
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


def test_fast_init_refuses_what_it_cannot_reproduce() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        x: int

    for cls in (WithFactory, WithPostInit, NotFrozen):
        with pytest.raises(TypeError):
            fast_init(cls)


@pytest.mark.parametrize("cls", [VerifiedToken, Identity, TokenContext, CompactJWS, AccessClaims, Principal])
def test_the_verification_records_use_it_and_stay_frozen(cls: type) -> None:
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert "_set0" in cls.__init__.__globals__  # fast_init's own, not the dataclass's
    assert dataclasses.is_dataclass(cls)
    params = [f.name for f in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == params


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
