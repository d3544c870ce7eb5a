"""The OpenAPI schema of a camera table, built from `CameraConfig`'s field table (the TOML key,
the default, and the declared option's kind, choices, bounds and help, or else the value's
parser), so a camera key added to the config is in the API's schema without a change here;
and the service's error shape."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pipeline.apps.serve import config as config_module
from pipeline.apps.serve.config import CameraConfig
from pipeline.option_table import Option

_NUMBER = {"type": "number"}
_POINTS = {"type": "array", "items": _NUMBER}
# The value parsers of config.py by name: what JSON each accepts.
_PARSERS: dict[str, dict] = {
    "_string": {"type": "string"},
    "_boolean": {"type": "boolean"},
    "_positive_float": {"type": "number", "exclusiveMinimum": 0},
    "_seconds": {"type": "number", "minimum": 0, "maximum": config_module.MAX_SECONDS},
    "_fraction": {"type": "number", "minimum": 0, "maximum": 1},
    "_lines": {"type": "object", "additionalProperties": {**_POINTS, "minItems": 4,
               "maxItems": 4}, "description": "name -> [x1, y1, x2, y2], fractions of the frame"},
    "_zones": {"type": "object", "additionalProperties": {**_POINTS, "minItems": 6},
               "description": "name -> [x1, y1, x2, y2, x3, y3, ...], fractions of the frame"},
    "_masks": {"type": "array", "items": {**_POINTS, "minItems": 6}},
}  # fmt: skip
_TYPES = {str: {"type": "string"}, int: {"type": "integer"}, float: _NUMBER,
          bool: {"type": "boolean"}}  # fmt: skip
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def value_schema(parse: Any, annotation: Any) -> dict:
    """What JSON a camera key takes: from its parser when known, else from its type."""
    qualname = getattr(parse, "__qualname__", "")
    if qualname in _PARSERS:
        return dict(_PARSERS[qualname])
    base = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    return dict(_TYPES.get(base[0], {}))


def option_schema(option: Option) -> dict:
    """What JSON a declared option (`pipeline.option_table`) takes: its kind, choices and
    bounds, with its help as the description."""
    if option.choices:
        schema: dict[str, Any] = {"type": "string", "enum": list(option.choices)}
    else:
        schema = dict(_TYPES.get(option.kind, {}))
    bounds = option.bounds
    if bounds is not None and bounds.low is not None:
        schema["exclusiveMinimum" if bounds.low_open else "minimum"] = bounds.low
    if bounds is not None and bounds.high is not None:
        schema["exclusiveMaximum" if bounds.high_open else "maximum"] = bounds.high
    schema["description"] = option.help + (f" ({option.unit})" if option.unit else "")
    return schema


def camera_schema(*, source_required: bool = True) -> dict:
    """A camera table as JSON: every key of `CameraConfig` by its TOML name."""
    hints = typing.get_type_hints(CameraConfig, vars(config_module))
    properties: dict[str, dict] = {}
    for field in dataclasses.fields(CameraConfig):
        if "parse" not in field.metadata:
            continue
        key = field.metadata.get("key") or field.name
        option = field.metadata.get("option")
        schema = (
            option_schema(option)
            if option is not None
            else value_schema(field.metadata["parse"], hints[field.name])
        )
        if field.default is not dataclasses.MISSING and isinstance(
            field.default, (str, int, float, bool)
        ):
            schema["default"] = field.default
        properties[key] = schema
    table = {"type": "object", "properties": properties, "additionalProperties": False}
    if source_required:
        table["required"] = ["source"]
    return table


def new_camera_schema() -> dict:
    """The body of POST /api/streams: a camera table plus its name."""
    table = camera_schema()
    name = {"type": "string", "pattern": r"^(?!\.+$)[A-Za-z0-9_.-]{1,64}$"}
    return {**table, "properties": {"name": name, **table["properties"]},
            "required": ["name", "source"]}  # fmt: skip


def body(schema: dict) -> dict:
    """`openapi_extra` of a route taking this JSON body."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}  # fmt: skip


JOB = {
    "type": "object",
    "properties": {
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "out": {"type": "string"},
        "glob": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "force": {"type": "boolean"},
        "save_video": {"type": "boolean"},
        "concurrency": {"type": "integer", "minimum": 1},
    },
    "required": ["input", "out"],
    "additionalProperties": False,
}
ERROR_STATUSES = ("400", "401", "403", "404", "405", "409", "411", "413", "415", "416", "429",
                  "503")  # fmt: skip


def with_errors(document: dict) -> dict:
    """The OpenAPI document with the error reply (`{"error": ...}`) of each status on every
    operation, so a client (and an API tester) knows each answer the service may give."""
    document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reply = {
        "description": "refused, with a one-line reason",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # the service answers 400, never 422
            for answer in responses.values():  # a non-JSON reply is that kind alone
                content = answer.get("content", {})
                if len(content) > 1:
                    content.pop("application/json", None)
            for status in ERROR_STATUSES:
                responses.setdefault(status, reply)
    return document
