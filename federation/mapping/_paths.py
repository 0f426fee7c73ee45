"""Claim paths: how a mapping names a value in a token.

Owns: the path syntax and its resolution, compiled once per path:

* ``$name`` is the provider-neutral view (see :data:`NORMALISED_NAMES`), never
  a claim: ``$email`` is the profile's email, whatever the provider calls it;
  a provider plugin may add names of its own (``ProviderPlugin.vocabulary``,
  e.g. Entra's ``$tenant``), which resolve only for that provider's tokens;
* otherwise the whole path as written is tried first as one top-level claim
  name (so ``https://example.com/roles`` and ``cognito:groups`` work), then as
  a dotted path into nested objects: ``realm_access.roles``; ``\\.`` is a dot
  inside a key (``resource_access.my\\.app.roles``), ``\\\\`` a backslash,
  ``\\$`` a leading dollar of a real claim name, ``\\[`` a bracket; ``[n]``
  after a key picks a list element (``addresses[0].country``);
* JSON ``null`` counts as absent.

Resolution never raises: a missing key, a wrong type along the way or an
index out of range all give :data:`MISSING`.

Must not: interpret values (conditions and transforms do that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from federation import plugins
from federation.frozen import record_factory

__all__ = [
    "MISSING",
    "NORMALISED_NAMES",
    "ClaimPath",
    "Context",
    "Frame",
    "PathError",
    "Slots",
    "kind_of",
    "parse_path",
    "provider_vocabulary",
]

MAX_PATH_LENGTH = 256
MAX_SEGMENTS = 32


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: The result of resolving a path that leads nowhere (also for JSON null).
MISSING: Final[Any] = _Missing()

#: The reserved ``$`` names and what each one is (documented in docs/mapping.md).
NORMALISED_NAMES: dict[str, str] = {
    "email": "the profile's email address (string), whatever claim the provider uses",
    "email_verified": "true only when the provider vouches for the email as it documents (boolean)",
    "username": "the provider's username claim, normalised (string)",
    "groups": "group names or ids from the provider's group claim (list of strings)",
    "roles": "role names from the provider's role claims (list of strings)",
    "groups_overage": "true when the provider left groups out because there were too many (Entra)",
    "provider": "the provider profile that verified the token: oidc, cognito, azure_ad, ...",
    "issuer": "the configured issuer string the token matched",
    "subject": "the token's sub",
    "token_type": "id or access",
}


class PathError(ValueError):
    """A path that cannot be parsed (the message says why)."""


def provider_vocabulary() -> dict[str, tuple[str, ...]]:
    """The ``$``-names registered providers add: name -> the providers that define it.

    Raises :class:`PathError` when a plugin redefines a provider-neutral name.
    """
    names: dict[str, tuple[str, ...]] = {}
    for plugin in plugins.plugins():
        for name in plugin.vocabulary:
            if name in NORMALISED_NAMES:
                raise PathError(f"provider {plugin.name!r} redefines the provider-neutral name ${name}")
            names[name] = (*names.get(name, ()), plugin.name)
    return names


def _provider_value(name: str, providers: tuple[str, ...]) -> Callable[[Context], Any]:
    # The providers' value functions, looked up once when the path compiles, not per token.
    values_of = {
        provider: plugin.values
        for provider in providers
        if (plugin := plugins.get(provider)) is not None and plugin.values is not None
    }

    def resolve(ctx: Context) -> Any:
        values = values_of.get(ctx.normalised.get("provider"))  # type: ignore[arg-type]
        if values is None:
            return MISSING  # another provider's token, or a provider without values: no such name
        value = values(ctx.claims).get(name)
        return MISSING if value is None else value

    return resolve


@dataclass(frozen=True, slots=True)
class Context:
    """What a mapping reads: the claims and the normalised (``$``) view."""

    claims: Mapping[str, Any]
    normalised: Mapping[str, Any]

    @property
    def provider(self) -> str:
        return str(self.normalised["provider"])

    @property
    def issuer(self) -> str:
        return str(self.normalised["issuer"])


make_context = record_factory(Context)  # built for every apply


Segment = str | int


@dataclass(frozen=True, slots=True)
class ClaimPath:
    """A parsed path; ``resolve(context)`` gives the value or :data:`MISSING`."""

    text: str
    normalised: str | None  # the $ name, when the path is one
    segments: tuple[Segment, ...]
    resolve: Callable[[Context], Any]
    #: False for a provider plugin's $ name: its value comes from plugin code, run only
    #: when a rule reads it (never resolved ahead, see :class:`Slots`).
    pure: bool = True

    def __str__(self) -> str:
        return self.text


#: What compiled rules read: ``frame[0]`` is the :class:`Context`, ``frame[i]`` the value
#: of the path that :class:`Slots` gave place ``i`` (resolved once per apply).
Frame = list[Any]


def _itself(ctx: Context) -> Any:
    return ctx


class Slots:
    """The paths a compiled mapping reads, each given a place in the frame.

    A path is resolved once per apply (not once per rule that reads it) and before any
    rule runs, which changes nothing a rule can see: resolving a path is a pure function
    of the context that never raises. A provider plugin's ``$`` name is the exception
    (its value comes from plugin code): it gets no place, and a rule reading it resolves
    it when it runs, as before.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._resolvers: list[Callable[[Context], Any]] = [_itself]
        self._reading: set[int] = set()

    def slot(self, path: ClaimPath) -> int | None:
        """The frame index of ``path``'s value; None for a path resolved where it is read."""
        if not path.pure:
            return None
        index = self._index.get(path.text)
        if index is None:
            index = self._index[path.text] = len(self._resolvers)
            self._resolvers.append(path.resolve)
        self._reading.add(index)
        return index

    def reading(self) -> set[int]:
        """Start a new record of the places handed out (what one compiled rule reads)."""
        self._reading = set()
        return self._reading

    def __len__(self) -> int:
        return len(self._resolvers)

    def resolvers(self, used: frozenset[int] | None = None) -> tuple[Callable[[Context], Any], ...]:
        """What builds a frame: ``[r(ctx) for r in resolvers]``; the places not in ``used``
        (another scope's paths) are left :data:`MISSING` without resolving them."""
        if used is None:
            return tuple(self._resolvers)
        return tuple(r if i == 0 or i in used else _unused for i, r in enumerate(self._resolvers))


def _unused(ctx: Context) -> Any:
    return MISSING


def _split(text: str) -> list[Segment]:
    """Segments of a dotted path with escapes and ``[n]`` indexes."""
    segments: list[Segment] = []
    key: list[str] = []
    have_key = False  # the current key was started (it may legitimately be "" only if escaped)
    i = 0
    n = len(text)

    def end_key() -> None:
        nonlocal have_key
        if not have_key and not key:
            raise PathError("empty key in path (two dots in a row, or a leading or trailing dot)")
        segments.append("".join(key))
        key.clear()
        have_key = False

    after_index = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n or text[i + 1] not in ".\\$[]":
                raise PathError(r"a backslash must escape '.', '\', '$', '[' or ']'")
            key.append(text[i + 1])
            have_key = True
            i += 2
            after_index = False
            continue
        if ch == ".":
            if after_index:
                after_index = False
            else:
                end_key()
            i += 1
            continue
        if ch == "[":
            close = text.find("]", i)
            digits = text[i + 1 : close] if close > 0 else ""
            if not (digits.isascii() and digits.isdigit()):
                raise PathError(r"'[' must start a list index such as [0] (write '\[' for a bracket)")
            if not after_index:
                end_key()
            segments.append(int(digits))
            after_index = True
            i = close + 1
            if i < n and text[i] not in ".[":
                raise PathError("a list index must be followed by '.', '[' or the end of the path")
            continue
        if ch == "]":
            raise PathError(r"unbalanced ']' (write '\]' for a bracket)")
        if after_index:
            raise PathError("a list index must be followed by '.', '[' or the end of the path")
        key.append(ch)
        have_key = True
        i += 1
    if not after_index:
        end_key()
    if len(segments) > MAX_SEGMENTS:
        raise PathError(f"path deeper than {MAX_SEGMENTS} levels")
    return segments


def _walk(value: Any, segments: Sequence[Segment]) -> Any:
    for seg in segments:
        if isinstance(seg, int):
            if isinstance(value, (list, tuple)) and seg < len(value):
                value = value[seg]
            else:
                return MISSING
        elif type(value) is dict or isinstance(value, Mapping):  # a JSON object skips the ABC check
            value = value.get(seg, MISSING)
        else:
            return MISSING
        if value is None:
            return MISSING
    return value


def parse_path(text: str) -> ClaimPath:
    """Parse a path; raise :class:`PathError` with the reason."""
    if not isinstance(text, str) or not text:
        raise PathError("a claim path must be a non-empty string")
    if len(text) > MAX_PATH_LENGTH:
        raise PathError(f"a claim path may have at most {MAX_PATH_LENGTH} characters")
    if text.startswith("$"):
        name = text[1:]
        if name not in NORMALISED_NAMES:
            extra = provider_vocabulary()
            if name in extra:
                return ClaimPath(text, name, (), _provider_value(name, extra[name]), pure=False)
            known = ", ".join("$" + n for n in [*NORMALISED_NAMES, *extra])
            raise PathError(f"unknown normalised name {text!r}; known: {known} (write '\\$' for a claim)")

        def normalised(ctx: Context) -> Any:
            value = ctx.normalised.get(name)
            return MISSING if value is None else value

        return ClaimPath(text, name, (), normalised)
    segments = _split(text)
    if len(segments) == 1 and isinstance(segments[0], str):
        key = segments[0]

        def top(ctx: Context) -> Any:
            value = ctx.claims.get(key, MISSING)
            return MISSING if value is None else value

        return ClaimPath(text, None, tuple(segments), top)
    frozen = tuple(segments)
    first, rest = frozen[0], frozen[1:]
    if isinstance(first, int):

        def nested(ctx: Context) -> Any:
            claims = ctx.claims
            value = claims.get(text, MISSING)  # a literal claim name wins first
            if value is MISSING:
                return _walk(claims, frozen)
            return MISSING if value is None else value

        return ClaimPath(text, None, frozen, nested)

    if all(type(seg) is str for seg in rest):  # key.key..., the commonest nested path

        def keys(ctx: Context) -> Any:
            claims = ctx.claims
            value = claims.get(text, MISSING)  # a literal claim name wins first
            if value is not MISSING:
                return MISSING if value is None else value
            value = claims.get(first)  # read as `top` reads them (see nested_key)
            for key in rest:  # _walk's steps for keys, a JSON object first
                if type(value) is dict or isinstance(value, Mapping):
                    value = value.get(key)
                    if value is None:
                        return MISSING
                else:
                    return MISSING
            return value

        return ClaimPath(text, None, frozen, keys)

    def nested_key(ctx: Context) -> Any:
        claims = ctx.claims
        value = claims.get(text, MISSING)  # a literal claim name wins first
        if value is MISSING:
            # The claims are a mapping, read as `top` reads them: no ABC check per token
            # (a MappingProxyType is not a dict: isinstance(..., Mapping) costs half the walk).
            value = claims.get(first)
            return MISSING if value is None else _walk(value, rest)
        return MISSING if value is None else value

    return ClaimPath(text, None, frozen, nested_key)


def kind_of(value: object) -> str:
    """A JSON type name with its article, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict) or hasattr(value, "keys"):
        return "an object"
    return "null" if value is None else "an unsupported value"
