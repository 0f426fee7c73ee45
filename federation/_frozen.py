"""Cheap construction of the frozen records built for every verified token.

A frozen dataclass's generated ``__init__`` assigns each field through
``object.__setattr__``, a slot-wrapper call that costs about 100 ns a field:
for the three records every first-seen token builds (``TokenContext``,
``Identity``, ``VerifiedToken``) that was more than a tenth of the library's
own time per token (docs/performance.md, "Verification"). :func:`fast_init`
replaces that ``__init__`` with one that stores through the slots' own
descriptors, about half the cost, with the same signature, defaults and
immutability: assignment after construction still raises
``FrozenInstanceError``, and ``dataclasses.replace``, equality, hashing and
``repr`` are the dataclass's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that skips ``object.__setattr__``.

    Only plain fields are supported (a default value, or none); a field with a
    ``default_factory``, ``init=False`` or a ``__post_init__`` is refused at
    import time, so the replacement can never silently differ from the original.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__")
    namespace: dict[str, Any] = {}
    args: list[str] = []
    body: list[str] = []
    for i, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not field.init or field.kw_only or field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name} is not a plain field")
        setter = f"_set{i}"
        # The slot's member descriptor, on whichever class of the MRO declared it.
        owner = next(c for c in cls.__mro__ if field.name in c.__dict__)
        namespace[setter] = owner.__dict__[field.name].__set__
        if field.default is dataclasses.MISSING:
            args.append(field.name)
        else:
            namespace[f"_default{i}"] = field.default
            args.append(f"{field.name}=_default{i}")
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
