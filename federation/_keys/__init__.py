"""Key sources: the :class:`KeySource` interface, a static key set, and the HTTP key cache.

* ``_protocol``  the :class:`KeySource` protocol the bridge asks of every source.
* ``_static``    :class:`StaticKeySet`: fixed keys from a file or a dict, never fetched.
* ``_http``      moves bytes: one GET, HTTPS only, no redirects, timeouts, a size cap.
* ``_connect``   the bridge's own transports: every connection vets the addresses the
                 host resolves to (SSRF), then connects to a vetted IP.
* ``_documents`` judges responses: status, JSON, discovery ``issuer``, JWK Set hygiene,
                 ``Cache-Control`` TTL clamping. Pure.
* ``_state``     the cache state machine per issuer: freshness, forced-refetch cooldown,
                 unknown-kid negative cache, failure back-off, stale-if-error. Pure, clock injected.
* ``_flight``    single-flight: one fetch in flight per key source; threads wait on a
                 condition, asyncio tasks (of any event loop) on a future of their own loop;
                 a flight is a lease, so an abandoned one (its loop stopped) is taken over.
* ``_source``    ties them together: a sans-I/O refresh plan driven by a sync shell
                 (threads) and an async shell (tasks), both claiming the same flight.
"""

from ._protocol import KeySource
from ._static import StaticKeySet

__all__ = ["KeySource", "StaticKeySet"]
