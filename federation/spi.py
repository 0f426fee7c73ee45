"""The extension interface: everything a provider, a key source or a store is written against.

Stable: names here keep their meaning across minor releases, and a package
outside this repository may build on them (``docs/architecture.md`` shows the
four common extensions and the files each touches)::

    from federation.spi import ProviderProfile, TokenContext, Identity, TokenType

The engine's own packages use these names through this module too: nothing
imports another package's underscore modules (``tests/test_architecture.py``
walks the source tree and fails on such an import).
"""

from __future__ import annotations

from ._profile import (
    DEFAULT_ALGORITHMS,
    Identity,
    KeySourceSpec,
    ProviderProfile,
    TokenContext,
    as_strict_bool,
    as_string_list,
    check_client_bound_access,
)
from ._rfc7517 import KeySet, VerificationKey
from ._rfc7519 import TokenType, audience_values, classify_token, numeric_date
from ._verify import VerifiedToken

__all__ = [
    "DEFAULT_ALGORITHMS",
    "Identity",
    "KeySet",
    "KeySourceSpec",
    "ProviderProfile",
    "TokenContext",
    "TokenType",
    "VerificationKey",
    "VerifiedToken",
    "as_strict_bool",
    "as_string_list",
    "audience_values",
    "check_client_bound_access",
    "classify_token",
    "numeric_date",
]
