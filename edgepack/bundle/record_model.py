"""The base of the bundle's pydantic records (manifest.json, measurements.json) and the field types they share.

A record keeps the order its keys were given in: a manifest is signed and compared byte for byte, so dumping
a record must give the keys the producer wrote, in its order (the fields it declares, and the extra keys a
later edgepack may add, which the published schema allows). The JSON Schemas `edgepack manifest schema`
prints are generated from these models (`document`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

T = TypeVar("T")
# a key a record may leave out, but not null: absent from the dump unless given (dumps exclude unset keys)
if TYPE_CHECKING:
    Opt: TypeAlias = T | None
else:
    Opt = T | SkipJsonSchema[None]
Num = Annotated[int | float, WithJsonSchema({"type": "number"})]  # an int stays an int (1, not 1.0)
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Sha256 = Annotated[str, StringConstraints(pattern="^[0-9a-f]{64}$")]
Counts = dict[str, Count]


def _tidy(schema: dict[str, Any]) -> None:
    """Property titles and null defaults say nothing a reader of the schema needs."""
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if prop.get("default", 0) is None:
            del prop["default"]


class Record(BaseModel):
    """Frozen; extra keys allowed (the published schema allows them); dumped in the order given."""

    model_config = ConfigDict(
        extra="allow", frozen=True, populate_by_name=True, protected_namespaces=(), json_schema_extra=_tidy
    )
    _keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        record = handler(data)
        if isinstance(data, dict) and isinstance(record, Record):
            record._keys = tuple(data)
        return record

    @model_serializer(mode="wrap")
    def _in_given_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        aliases = {name: field.alias or name for name, field in type(self).model_fields.items()}
        order = [aliases.get(key, key) for key in self._keys]
        return {key: out[key] for key in order if key in out} | {k: v for k, v in out.items() if k not in order}

    def dump(self) -> dict[str, Any]:
        """The record as plain data: the keys given (null ones too), in their order, under their JSON names."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def only(**keys: Any) -> dict[str, Any]:
    """The keys that are not None: for a record's keys that are left out rather than null."""
    return {key: value for key, value in keys.items() if value is not None}


def document(model: type[BaseModel], kind: str, version: int) -> dict[str, Any]:
    """`model`'s JSON Schema (draft 2020-12) as edgepack publishes it."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://edgepack.dev/schemas/{kind}-v{version}.json",
        "title": f"edgepack bundle {kind}",
        **schema,
    }
