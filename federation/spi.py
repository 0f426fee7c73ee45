"""The extension interface: everything a provider, a key source or a store is written against.

Stable: names here keep their meaning across minor releases, and a package
outside this repository may build on them (``docs/architecture.md`` shows the
four common extensions and the files each touches)::

    from federation.spi import ProviderProfile, TokenContext, Identity, TokenType

The engine's own packages use these names through this module too: nothing
imports another package's underscore modules (``tests/test_architecture.py``
walks the source tree and fails on such an import).

What is here, by who needs it:

* a provider: :class:`ProviderProfile` (subclass it), :class:`TokenContext`,
  :class:`Identity`, :class:`KeySourceSpec`, :data:`TokenType` and the claim
  helpers (``as_strict_bool``, ``as_string_list``, ``audience_values``,
  ``classify_token``, ``numeric_date``, ``later``, ``check_client_bound_access``);
* a key source: the :class:`KeySource` protocol, :class:`VerificationKey` and
  :class:`KeySet`; :class:`StaticKeySet` is the shipped one without I/O;
  :class:`ResponseTooLarge`, what a bounded transport raises for an answer over its bound;
* a store: the protocol and records live in :mod:`federation.storage`;
* anything with a file of its own: the safe YAML reader behind
  ``federation.yaml`` (:func:`read_yaml_file`, :func:`load_yaml`,
  :class:`Located` with line numbers) and its ``ConfigError`` builders, and
  :func:`read_limited` (:class:`FileTooLarge`), which reads a key or secret file
  (:data:`MAX_SECRET_FILE_BYTES`) without ever reading more than its limit, a pipe refused,
  :func:`env_secret`, which reads one from the environment, and :func:`display_path`, a
  path as a message may show it;
* anything parsing untrusted JSON: :func:`loads_object`, the strict parser tokens go
  through (duplicate members, ``NaN``, lone surrogates and deep nesting refused, as
  :class:`StrictJSONError`, whose message never holds the input).
"""

from __future__ import annotations

from ._files import MAX_SECRET_FILE_BYTES, FileTooLarge, display_path, env_secret, read_limited
from ._json import StrictJSONError, loads_object
from ._keys import KeySource, StaticKeySet
from ._keys._bounded import ResponseTooLarge
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
from ._rfc7518 import ALGORITHMS, AlgorithmSpec
from ._rfc7519 import TokenType, audience_values, classify_token, later, numeric_date
from ._verify import VerifiedToken
from ._yaml import (
    Located,
    config_error_from_problems,
    config_error_from_validation,
    load_yaml,
    read_yaml_file,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "MAX_SECRET_FILE_BYTES",
    "AlgorithmSpec",
    "FileTooLarge",
    "Identity",
    "KeySet",
    "KeySource",
    "KeySourceSpec",
    "Located",
    "ProviderProfile",
    "ResponseTooLarge",
    "StaticKeySet",
    "StrictJSONError",
    "TokenContext",
    "TokenType",
    "VerificationKey",
    "VerifiedToken",
    "as_strict_bool",
    "as_string_list",
    "audience_values",
    "check_client_bound_access",
    "classify_token",
    "config_error_from_problems",
    "config_error_from_validation",
    "display_path",
    "env_secret",
    "later",
    "load_yaml",
    "loads_object",
    "numeric_date",
    "read_limited",
    "read_yaml_file",
]
