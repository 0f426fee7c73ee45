"""Cheap construction of frozen, slotted dataclass records built on every request.

A frozen dataclass's generated ``__init__`` assigns each field through
``object.__setattr__``, a slot-wrapper call that costs about 100 ns a field
(docs/performance.md, "Verification"). The records a token's verification, a
login and an authenticated request build are made with the two helpers here;
an extension that builds such records per request (a store's rows, a profile's
identity) may use them too.

:func:`fast_init` replaces a class's ``__init__`` with one that stores through
the slots' own descriptors, about half the cost, with the same signature,
defaults and immutability: assignment after construction still raises
``FrozenInstanceError``, and ``dataclasses.replace``, equality, hashing and
``repr`` are the dataclass's own.

:func:`record_factory` goes further for the code that builds these records
itself: a plain function that makes the record without the class call's
``__new__``/``__init__`` protocol, storing each field with the interpreter's own
slot store on a layout twin of the class and then giving the object its class.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fast_init", "record_factory"]

T = TypeVar("T")


def _frozen_slotted_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of ``cls``, which must be a frozen, slotted dataclass."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    return list(dataclasses.fields(cls))


def _plain_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of the frozen, slotted dataclass ``cls``, each a plain one (a
    default value or none); anything else is refused, so that a replacement of its
    construction can never silently differ from the dataclass's own."""
    fields = _frozen_slotted_fields(cls)
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__")
    for field in fields:
        if not field.init or field.kw_only or field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name} is not a plain field")
    return fields


def _parameters(fields: list[dataclasses.Field[Any]], namespace: dict[str, Any]) -> list[str]:
    """The constructor's parameters in source form; each default (and default factory, behind
    a marker the caller's body replaces) goes into ``namespace``."""
    args = []
    for i, field in enumerate(fields):
        if field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{i}"] = field.default_factory
            args.append(f"{field.name}=_MADE")
        elif field.default is dataclasses.MISSING:
            args.append(field.name)
        else:
            namespace[f"_default{i}"] = field.default
            args.append(f"{field.name}=_default{i}")
    return args


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that skips ``object.__setattr__``.

    Only plain fields are supported (a default value, or none); a field with a
    ``default_factory``, ``init=False`` or a ``__post_init__`` is refused at
    import time, so the replacement can never silently differ from the original.
    """
    namespace: dict[str, Any] = {}
    fields = _plain_fields(cls)
    args = _parameters(fields, namespace)
    body: list[str] = []
    for i, field in enumerate(fields):
        setter = f"_set{i}"
        # The slot's member descriptor, on whichever class of the MRO declared it.
        owner = next(c for c in cls.__mro__ if field.name in c.__dict__)
        namespace[setter] = owner.__dict__[field.name].__set__
        body.append(f"    {setter}(self, {field.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    # The technique dataclasses itself uses to build __init__; the source holds only field names.
    exec(source, namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls


def record_factory(cls: type[T]) -> Callable[..., T]:
    """A function with ``cls``'s constructor signature that makes the same record at
    about half the cost of calling the class (even with :func:`fast_init`).

    It makes an instance of a private twin of ``cls`` (the same slots, nothing
    else: no frozen ``__setattr__``), stores the fields with plain attribute
    stores, which the interpreter specialises to direct slot writes, then assigns
    ``__class__``: the caller only ever sees a finished, frozen ``cls``. Defaults
    and default factories apply as in the dataclass's ``__init__``, and
    ``__post_init__`` runs on the finished record, as it does there. Only a frozen,
    slotted dataclass directly on ``object`` whose constructor takes exactly its
    fields, positionally, qualifies; anything else is refused when the factory is
    made, and the twin's layout is checked there by one such assignment.
    """
    fields = _frozen_slotted_fields(cls)
    if cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} derives from another class than object")
    if any(not f.init or f.kw_only for f in fields) or list(inspect.signature(cls).parameters) != [
        f.name for f in fields
    ]:
        raise TypeError(f"{cls.__name__}'s constructor does not take exactly its fields")
    twin = type(f"_{cls.__name__}Fields", (), {"__slots__": cls.__dict__["__slots__"]})
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls, "_MADE": object()}
    args = _parameters(fields, namespace)
    body = ["    self = _new(_twin)"]
    for i, field in enumerate(fields):
        if field.default_factory is not dataclasses.MISSING:
            body.append(f"    if {field.name} is _MADE:\n        {field.name} = _factory{i}()")
        body.append(f"    self.{field.name} = {field.name}")
    body.append("    self.__class__ = _cls")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    body.append("    return self")
    source = f"def make_{cls.__name__}({', '.join(args)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # noqa: S102  (as fast_init: the source holds only field names)
    make: Callable[..., T] = namespace[f"make_{cls.__name__}"]
    make.__qualname__ = make.__name__
    make.__doc__ = f"Make a {cls.__name__} (same arguments as the class)."
    probe: Any = object.__new__(twin)
    probe.__class__ = cls  # raises TypeError here, not per token, if the layouts differ
    return make
