"""Mapping: how a verified token becomes local attributes and roles.

::

    from federation.mapping import Mapping

    mapping = Mapping.from_file("mapping.yaml")     # compiled once; errors name file:line:column
    result = mapping.apply(verified_token, existing_user_or_none)
    if result.denied:                               # a deny rule fired: provision nothing
        ...
    result.attributes, result.roles, result.granted, result.revoked, result.trace

    mapping.apply_claims({"sub": "u1", ...}, provider="keycloak")   # a dry run on raw claims

The result contract (:class:`MappingResult`, :class:`ExistingUser`,
:class:`TraceEntry`) is fixed in ``_result`` so that provisioning can rely
on it. The file format is documented in ``docs/mapping.md``; one private
module per concern: ``_model`` (schema), ``_load`` (validation and located
errors), ``_paths``, ``_templates``, ``_transforms``, ``_patterns`` (the
RE2 pattern wrapper), ``_conditions``, ``_compile`` (plans per
provider and issuer), ``_engine`` (applying a plan), ``_identity`` (the
normalised view for dry runs) and ``_mapping`` (this face).
"""

from __future__ import annotations

from ._engine import MISSING_ATTRIBUTE
from ._mapping import Mapping
from ._paths import NORMALISED_NAMES
from ._result import ExistingUser, MappingResult, TraceEntry

__all__ = ["MISSING_ATTRIBUTE", "NORMALISED_NAMES", "ExistingUser", "Mapping", "MappingResult", "TraceEntry"]
