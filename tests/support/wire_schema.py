"""Validate payloads against the wire contract's JSON Schemas (pak/wire/schemas), as both sides'
tests do: the schemas are the contract, the hand-written parser only mirrors them."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import orjson
from referencing import Registry, Resource

from pak.wire.common import SCHEMA_NAMES as NAMES
from pak.wire.common import load_schema


@functools.cache
def _registry() -> Registry:
    resources = []
    for name in NAMES:
        schema = load_schema(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=_registry(),
                                           format_checker=jsonschema.FormatChecker())


def validate(name: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
    """Raise jsonschema.ValidationError unless ``payload`` follows schema ``name``."""
    obj = orjson.loads(payload) if isinstance(payload, bytes | bytearray) else payload
    validator(name).validate(obj)
    return obj  # type: ignore[no-any-return]
