"""The mapping file's schema: pydantic models, unknown keys refused everywhere.

Owns: what a mapping file may say (``version``, ``attributes``, ``roles``,
``deny``, ``providers``, ``issuers``), each field's type, default and
description, the checks that concern one value (claim paths, templates,
regular expressions, transform steps, role names, deny codes, "exactly one
operator" in a condition), and the JSON Schema published for editors.

Values arrive in the short forms people write (``from: email`` or a list,
``transform: lower`` or a list, ``provider: cognito`` or a list) and are
normalised here to lists, so the compiler sees one shape.

Must not: compile or run anything, or check rules across fields (privileged
roles, overlays): :mod:`._load` does that with exact file positions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from federation import plugins

from ._paths import NORMALISED_NAMES, PathError, parse_path
from ._patterns import RegexError, compile_pattern
from ._templates import TemplateError, is_template, parse_template
from ._transforms import BARE_TRANSFORMS, VALUE_TRANSFORMS, Step

__all__ = [
    "PROVIDER_NAMES",
    "AttributeSpec",
    "Condition",
    "DenyRule",
    "MappingFile",
    "Overlay",
    "OverlayRoles",
    "RoleRule",
    "RolesSpec",
    "mapping_json_schema",
]

#: Provider names a mapping may scope by (the ``provider:`` values of federation.yaml), as
#: registered when this module was imported; validation reads the registry itself.
PROVIDER_NAMES: tuple[str, ...] = plugins.names()

MAX_LIST = 1000  # entries in one list of values or rules
MAX_TEXT = 1024  # characters in one literal value


def _one_or_many(value: Any) -> Any:
    """``x`` as ``[x]``; lists pass through."""
    return value if isinstance(value, list) else [value]


def _scalar(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ValueError(f"longer than {MAX_TEXT} characters")
        return value
    if value is None:
        raise ValueError("must be a string, number or boolean, not null (to test absence use exists: false)")
    raise ValueError("must be a string, number or boolean")


_SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
Scalar = Annotated[Any, BeforeValidator(_scalar), WithJsonSchema(_SCALAR_SCHEMA)]


def _claim_path(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a claim path must be a string")
    try:
        parse_path(value)
    except PathError as exc:
        raise ValueError(f"invalid claim path: {exc}") from None
    return value


_PATH_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "A claim name or dotted path (\\. escapes a dot), or a normalised name: "
    + ", ".join("$" + n for n in NORMALISED_NAMES),
}
ClaimPathStr = Annotated[Any, BeforeValidator(_claim_path), WithJsonSchema(_PATH_SCHEMA)]


def _source(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a source must be a claim path or a template string")
    if is_template(value):
        try:
            parse_template(value)
        except TemplateError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        return value
    return _claim_path(value)


_SOURCE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "A claim path, a $-name, or a template such as '{given_name} {family_name}'.",
}
Source = Annotated[Any, BeforeValidator(_source), WithJsonSchema(_SOURCE_SCHEMA)]
Sources = Annotated[
    list[Source],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=10),
    WithJsonSchema(
        {
            "anyOf": [
                _SOURCE_SCHEMA,
                {"type": "array", "items": _SOURCE_SCHEMA, "minItems": 1, "maxItems": 10},
            ],
            "description": "Where the value comes from; a list means fallbacks: the first that resolves.",
        }
    ),
]


def _pattern(value: Any, *, allow_lazy: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError("a regular expression must be a string")
    try:
        compile_pattern(value, allow_lazy=allow_lazy)
    except RegexError as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _step(value: Any) -> Step:
    """One transform step, normalised to a tuple."""
    if isinstance(value, str):
        if value in BARE_TRANSFORMS:
            return (value,)
        if value in VALUE_TRANSFORMS:
            raise ValueError(f"transform {value!r} needs an argument: write {{{value}: ...}}")
        known = ", ".join([*BARE_TRANSFORMS, *VALUE_TRANSFORMS])
        raise ValueError(f"unknown transform {value!r}; known: {known}")
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("a transform is a name (lower) or an object with one key ({prefix: 'x-'})")
    ((name, arg),) = value.items()
    if name in BARE_TRANSFORMS:
        raise ValueError(f"transform {name!r} takes no argument: write it as a bare name")
    if name not in VALUE_TRANSFORMS:
        known = ", ".join([*BARE_TRANSFORMS, *VALUE_TRANSFORMS])
        raise ValueError(f"unknown transform {name!r}; known: {known}")
    if name == "replace":
        if not isinstance(arg, dict) or set(arg) != {"pattern", "with"}:
            raise ValueError("replace takes {pattern: <regular expression>, with: <text>}")
        pattern, replacement = arg["pattern"], arg["with"]
        if not isinstance(replacement, str):
            raise ValueError("replace.with must be a string")
        try:
            _pattern(pattern, allow_lazy=False)
        except ValueError as exc:
            raise ValueError(f"replace.pattern: {exc}") from None
        return ("replace", pattern, replacement)
    if not isinstance(arg, str):
        raise ValueError(f"{name} takes a string")
    if name == "split" and not arg:
        raise ValueError("split needs a non-empty separator")
    if len(arg) > MAX_TEXT:
        raise ValueError(f"{name}: longer than {MAX_TEXT} characters")
    return (name, arg)


_STEP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "enum": list(BARE_TRANSFORMS),
            "description": "; ".join(f"{k}: {v}" for k, v in BARE_TRANSFORMS.items()),
        },
        {
            "type": "object",
            "properties": {
                "split": {"type": "string", "minLength": 1, "description": VALUE_TRANSFORMS["split"]},
                "join": {"type": "string", "description": VALUE_TRANSFORMS["join"]},
                "prefix": {"type": "string", "description": VALUE_TRANSFORMS["prefix"]},
                "suffix": {"type": "string", "description": VALUE_TRANSFORMS["suffix"]},
                "replace": {
                    "type": "object",
                    "description": VALUE_TRANSFORMS["replace"],
                    "properties": {"pattern": {"type": "string"}, "with": {"type": "string"}},
                    "required": ["pattern", "with"],
                    "additionalProperties": False,
                },
            },
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
        },
    ]
}
TransformStep = Annotated[Any, BeforeValidator(_step), WithJsonSchema(_STEP_SCHEMA)]
Transforms = Annotated[
    list[TransformStep],
    BeforeValidator(_one_or_many),
    Field(max_length=20),
    WithJsonSchema(
        {
            "anyOf": [_STEP_SCHEMA, {"type": "array", "items": _STEP_SCHEMA, "maxItems": 20}],
            "description": "Steps applied in order to the resolved value.",
        }
    ),
]


def _role_name(value: str) -> str:
    if not value or len(value) > 128:
        raise ValueError("a role name has 1 to 128 characters")
    if value != value.strip() or any(not c.isprintable() for c in value):
        raise ValueError("a role name may not have control characters or surrounding spaces")
    return value


RoleName = Annotated[str, AfterValidator(_role_name)]
RoleList = Annotated[list[RoleName], Field(max_length=MAX_LIST)]


def _provider_name(value: Any) -> str:
    known = plugins.names()  # read now: a provider registered at run time counts
    if value not in known:
        raise ValueError(f"unknown provider {value!r}; known: {', '.join(known)}")
    return str(value)


ProviderName = Annotated[Any, BeforeValidator(_provider_name), WithJsonSchema({"enum": list(PROVIDER_NAMES)})]


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


_ISSUER_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1}
IssuerName = Annotated[Any, BeforeValidator(_string), WithJsonSchema(_ISSUER_SCHEMA)]

ProviderList = Annotated[
    list[ProviderName],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(PROVIDER_NAMES)},
                {"type": "array", "items": {"enum": list(PROVIDER_NAMES)}, "minItems": 1},
            ]
        }
    ),
]
IssuerList = Annotated[
    list[IssuerName],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=MAX_LIST),
    WithJsonSchema({"anyOf": [_ISSUER_SCHEMA, {"type": "array", "items": _ISSUER_SCHEMA, "minItems": 1}]}),
]
ScalarList = Annotated[list[Scalar], Field(min_length=1, max_length=MAX_LIST)]


class _Model(BaseModel):
    """Base of every mapping model: unknown keys refused, no coercion, no explicit nulls."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [k for k, v in data.items() if v is None]
            if nulls:
                raise ValueError(f"{nulls[0]}: null is not allowed (leave the key out)")
        return data


#: Condition keys that test a claim's value (they need ``claim``).
VALUE_OPERATORS = ("equals", "in", "contains", "contains_any", "contains_all", "matches", "exists")
#: Condition keys that stand alone.
OTHER_OPERATORS = ("not", "all", "any", "provider", "issuer")


class Condition(_Model):
    """A test on the token. Exactly one operator; the value operators need ``claim``."""

    claim: ClaimPathStr | None = Field(None, description="The claim path (or $-name) the operator tests.")
    equals: Scalar | None = Field(
        None,
        description="The value equals this (a list: any element does). Types are strict: true is not 'true'.",
    )
    in_: ScalarList | None = Field(
        None, alias="in", description="The value (or any element) is one of these."
    )
    contains: Scalar | None = Field(
        None, description="The list (a single value counts as a list of one) contains this element."
    )
    contains_any: ScalarList | None = Field(None, description="The list contains at least one of these.")
    contains_all: ScalarList | None = Field(None, description="The list contains every one of these.")
    matches: Annotated[Any, BeforeValidator(_pattern), WithJsonSchema({"type": "string"})] | None = Field(
        None,
        description="A regular expression (linear-time subset of Python syntax) that finds a match "
        "in the value, or in any string element of a list. Anchor with ^ and $.",
    )
    exists: bool | None = Field(
        None, description="true: the claim is present and not null; false: it is not."
    )
    not_: Condition | None = Field(None, alias="not", description="Holds when the inner condition does not.")
    all: list[Condition] | None = Field(None, min_length=1, description="Holds when every condition holds.")
    any: list[Condition] | None = Field(None, min_length=1, description="Holds when at least one holds.")
    provider: ProviderList | None = Field(
        None, description="The token came through one of these provider profiles."
    )
    issuer: IssuerList | None = Field(
        None, description="The token's configured issuer is one of these (exact)."
    )

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [self._key(name) for name in self.model_fields_set if name != "claim"]
        if not given:
            raise ValueError(
                "a condition needs an operator: " + ", ".join([*VALUE_OPERATORS, *OTHER_OPERATORS])
            )
        if len(given) > 1:
            raise ValueError(
                f"a condition has exactly one operator, found {' and '.join(sorted(given))} "
                "(combine conditions with all: [...])"
            )
        (op,) = given
        if op in VALUE_OPERATORS and "claim" not in self.model_fields_set:
            raise ValueError(f"'{op}' needs 'claim': the claim path it tests")
        if op in OTHER_OPERATORS and "claim" in self.model_fields_set:
            raise ValueError(f"'{op}' does not take 'claim'")
        if op == "equals" and self.equals is None:
            raise ValueError("equals: null is not supported (use exists: false)")
        return self

    @staticmethod
    def _key(name: str) -> str:
        return {"in_": "in", "not_": "not"}.get(name, name)

    @property
    def operator(self) -> str:
        """The one operator this condition uses."""
        return next(self._key(n) for n in self.model_fields_set if n != "claim")


class AttributeSpec(_Model):
    """How one local attribute gets its value."""

    from_: Sources | None = Field(None, alias="from")
    transform: Transforms = Field(default_factory=list)
    required: bool = Field(
        False,
        description="When nothing resolves (and there is no default), deny with code missing_attribute.",
    )
    default: Scalar | None = Field(
        None,
        description="Used when no source resolves; a string may be a template ('{sub}'). Not transformed.",
    )
    update: Literal["always", "on_create", "if_empty"] = Field(
        "always",
        description="always: written at every login; on_create: only for a new user; "
        "if_empty: only while the user's current value is empty.",
    )
    when: Condition | None = Field(None, description="Only map this attribute when the condition holds.")
    description: str | None = None

    @field_validator("default")
    @classmethod
    def _default_template(cls, value: Any) -> Any:
        if isinstance(value, str) and is_template(value):
            try:
                parse_template(value)
            except TemplateError as exc:
                raise ValueError(f"invalid template: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_a_value(self) -> AttributeSpec:
        if self.from_ is None and self.default is None:
            raise ValueError("an attribute needs 'from' (where its value comes from) or a 'default'")
        if self.from_ is None and self.transform:
            raise ValueError("'transform' applies to 'from' values; a default is used as written")
        return self


def _attribute_name(value: Any) -> Any:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError("an attribute name has 1 to 64 characters")
    if not (value[0].isascii() and value[0].isalpha()) or not all(
        c.isascii() and (c.isalnum() or c in "_-") for c in value
    ):
        raise ValueError(
            f"invalid attribute name {value!r}: use letters, digits, '_' and '-', starting with a letter"
        )
    return value


AttributeName = Annotated[Any, BeforeValidator(_attribute_name), WithJsonSchema({"type": "string"})]
Attributes = Annotated[dict[AttributeName, AttributeSpec], Field(max_length=200)]


class RoleRule(_Model):
    """Grant roles when a condition holds."""

    name: str | None = Field(None, description="A label shown in the trace.")
    when: Condition | None = Field(None, description="The rule fires when this holds (absent: always).")
    grant: RoleList = Field(default_factory=list, description="Roles granted when the rule fires.")
    grant_from: ClaimPathStr | None = Field(
        None,
        description="Also grant each value of this claim (after 'transform', filtered by 'only') as a role.",
    )
    transform: Transforms = Field(default_factory=list, description="Applied to grant_from values.")
    only: RoleList | None = Field(
        None, description="With grant_from: keep only these roles (after transform)."
    )
    allow_privileged: bool = Field(
        False,
        description="This rule may grant roles listed in roles.privileged (checked at load and at run time).",
    )

    @model_validator(mode="after")
    def _grants_something(self) -> RoleRule:
        if not self.grant and self.grant_from is None:
            raise ValueError(
                "a role rule needs 'grant' (roles) or 'grant_from' (a claim whose values are roles)"
            )
        if self.grant_from is None and (self.transform or self.only is not None):
            raise ValueError("'transform' and 'only' apply to 'grant_from' values")
        return self


Rules = Annotated[list[RoleRule], Field(max_length=MAX_LIST)]


class RolesSpec(_Model):
    """Which local roles the user ends up with."""

    sync: Literal["additive", "authoritative"] = Field(
        description="additive: never remove roles; authoritative: remove roles the mapping did not grant "
        "(except protected ones). No default: choose."
    )
    default: RoleList = Field(default_factory=list, description="Granted to every user the mapping allows.")
    protected: RoleList = Field(default_factory=list, description="Never removed by the mapping.")
    privileged: RoleList = Field(
        default_factory=list,
        description="Granted only by rules with allow_privileged: true; never by default.",
    )
    rules: Rules = Field(default_factory=list)


class OverlayRoles(_Model):
    """Role additions of a provider or issuer section (sync and the role lists stay global)."""

    default: RoleList = Field(default_factory=list, description="Added to roles.default for these tokens.")
    rules: Rules = Field(default_factory=list, description="Appended after roles.rules for these tokens.")


_CODE_RULE = "a deny code is 1 to 64 characters: a lower-case letter, then lower-case letters, digits and '_'"


def _code(value: str) -> str:
    if not (1 <= len(value) <= 64) or not value.isascii() or not value[0].isalpha():
        raise ValueError(_CODE_RULE)
    if not all(c.islower() or c.isdigit() or c == "_" for c in value):
        raise ValueError(_CODE_RULE)
    return value


class DenyRule(_Model):
    """Refuse the login when a condition holds."""

    name: str | None = Field(None, description="A label shown in the trace.")
    when: Condition = Field(description="Deny when this holds.")
    code: Annotated[str, AfterValidator(_code)] = Field(
        description="The stable code returned as MappingResult.denied, e.g. unverified_email."
    )
    message: str | None = Field(None, description="A human-readable reason, for the trace.")


DenyRules = Annotated[list[DenyRule], Field(max_length=MAX_LIST)]


class Overlay(_Model):
    """Additions and overrides for tokens of one provider or one issuer."""

    attributes: Attributes = Field(
        default_factory=dict, description="Entries replace the base entry of the same name whole, or add one."
    )
    roles: OverlayRoles | None = None
    deny: DenyRules = Field(default_factory=list, description="Appended after the base deny rules.")


def _version(value: Any) -> Any:
    if type(value) is not int:  # not coerced: "1", 1.0 and true are not the version
        raise ValueError(f"the mapping version must be the number 1, not {value!r}")
    if value != 1:
        raise ValueError(f"unsupported mapping version {value!r}: this release reads version 1")
    return value


class MappingFile(_Model):
    """A federation-bridge mapping file: claims to local attributes and roles."""

    model_config = ConfigDict(
        title="federation-bridge mapping",
        json_schema_extra={"$id": "https://federation-bridge.invalid/schemas/mapping-v1.json"},
    )

    version: Annotated[Any, BeforeValidator(_version), WithJsonSchema({"const": 1})] = Field(
        description="The file format version: 1."
    )
    description: str | None = None
    attributes: Attributes = Field(default_factory=dict, description="Local attributes, by name.")
    roles: RolesSpec | None = Field(None, description="Local roles. Absent: the mapping leaves roles alone.")
    deny: DenyRules = Field(default_factory=list, description="Rules that refuse the login, in order.")
    providers: dict[ProviderName, Overlay] = Field(
        default_factory=dict, description="Per-provider additions, applied after the base."
    )
    issuers: dict[IssuerName, Overlay] = Field(
        default_factory=dict, description="Per-issuer additions (exact issuer strings), applied last."
    )


def mapping_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a mapping file, for editors."""
    schema = _without_nulls(MappingFile.model_json_schema(by_alias=True))
    schema["properties"]["providers"]["propertyNames"] = {"enum": list(plugins.names())}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _without_nulls(node: Any) -> Any:
    """The schema without the ``null`` alternatives pydantic adds for optional fields
    (a mapping file never writes null) and without ``default: null``."""
    if isinstance(node, list):
        return [_without_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _without_nulls(v) for k, v in node.items() if not (k == "default" and v is None)}
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
    return out
