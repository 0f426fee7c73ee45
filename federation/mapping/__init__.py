"""Mapping: how a verified token becomes local attributes and roles.

The result contract (:class:`MappingResult`, :class:`ExistingUser`) is fixed
here so that provisioning can rely on it; the mapping file format and engine
live beside it.
"""

from __future__ import annotations

from ._result import ExistingUser, MappingResult, TraceEntry

__all__ = ["ExistingUser", "MappingResult", "TraceEntry"]
