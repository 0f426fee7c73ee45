"""The key-source interface: what :class:`~federation.Bridge` asks of any source of keys.

Owns: the :class:`KeySource` protocol. The bridge holds one source per issuer
entry; by default the HTTP cache (``_source.IssuerKeySource``), else a
:class:`~federation._keys._static.StaticKeySet` (``jwks_file:``) or any object
the application passes in ``Bridge(config, key_sources={issuer: source})``.

Must not: hold behaviour; this module only states the contract.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._rfc7517 import VerificationKey
from ..events import EventSink

__all__ = ["KeySource"]


@runtime_checkable
class KeySource(Protocol):
    """Where one issuer's verification keys come from.

    * ``get_key(kid, alg)`` / ``await aget_key(kid, alg)``: the key for a token's
      ``kid`` and ``alg``. Raise :class:`~federation.errors.UnknownKey` when no
      key has the kid, :class:`~federation.errors.KeySetUnavailable` when the
      keys cannot be had right now. Called on every verification: answer from
      memory when you can.
    * ``refresh()`` / ``await arefresh()``: load the keys now (``Bridge.warm_up``);
      return True when keys are available. A source without I/O returns True.
    * ``on_event``: the events hook. The bridge sets it to its own sink
      (``Bridge(on_event=...)``, default: the ``federation`` logger) when the
      source is handed over with ``on_event = None``; a source reports fetches
      and failures by calling it with a :class:`~federation.events.Event`, and a
      source that has nothing to report never calls it. A sink must not raise
      into verification: call it inside ``try``/``except Exception``.

    Optional: ``renew_key(kid, alg, rejected)`` / ``await arenew_key(...)``: ``rejected``
    (the key ``get_key`` gave) failed the token's signature; return a different key now
    held for (kid, alg), which the bridge tries once, or None. A source without them is
    never asked. A ``last_error`` attribute (a short reason string or None) is used
    by ``warm_up`` reports; without it a failed refresh reads ``"failed"``. A
    ``ready`` attribute (True when ``get_key`` can answer from memory now) lets
    ``warm_up(cold_only=True)`` skip the source; without it the source is refreshed.
    """

    on_event: EventSink | None

    def get_key(self, kid: str | None, alg: str) -> VerificationKey:
        """The verification key for (``kid``, ``alg``), blocking if it must load."""
        ...

    async def aget_key(self, kid: str | None, alg: str) -> VerificationKey:
        """Async twin of :meth:`get_key`."""
        ...

    def refresh(self) -> bool:
        """Load the keys now; True when keys are available."""
        ...

    async def arefresh(self) -> bool:
        """Async twin of :meth:`refresh`."""
        ...
