"""JSON Schemas of OIP v2 bodies, for the OpenAPI document only (requests are validated by hand)."""

from __future__ import annotations

from typing import Any, get_args

from .model_settings import Datatype

_PARAMETERS = {"type": "object", "additionalProperties": True}
_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_DATATYPE = {"type": "string", "enum": list(get_args(Datatype))}
_TENSOR_METADATA = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": _DATATYPE,
        "shape": {
            "type": ["array", "null"],
            "items": {"type": "integer"},
            "description": "-1 marks a dynamic dimension; null: the model does not fix the rank (any shape).",
        },
    },
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

INFERENCE_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape"],
                "properties": {
                    "name": {"type": "string"},
                    "datatype": _DATATYPE,
                    "shape": _SHAPE,
                    "parameters": _PARAMETERS,
                    "data": {"type": "array", "description": "Flat row-major elements."},
                },
            },
        },
        "outputs": {
            "type": "array",
            "description": "Outputs to return; none or empty: all of them.",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
            },
        },
    },
}

INFERENCE_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape"],
                "properties": {
                    "name": {"type": "string"},
                    "datatype": _DATATYPE,
                    "shape": _SHAPE,
                    "parameters": _PARAMETERS,
                    "data": {"type": "array"},
                },
            },
        },
    },
}

FEEDBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["id", "outputs"],
    "properties": {
        "id": {"type": "string", "description": "The `id` of an earlier inference request to this model."},
        "outputs": {
            "type": "array",
            "minItems": 1,
            "description": "The true values of some or all of the outputs that request returned.",
            "items": {
                "type": "object",
                "required": ["name", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "datatype": _DATATYPE,
                    "shape": _SHAPE,
                    "data": {"type": "array", "description": "Flat row-major elements."},
                },
            },
        },
    },
}

FEEDBACK_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "model_version", "id", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "correct": {"type": "integer", "description": "Label outputs: elements predicted right."},
                    "incorrect": {"type": "integer"},
                    "mean_absolute_error": {"type": "number", "description": "Floating-point outputs."},
                },
            },
        },
    },
}

MODEL_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR_METADATA},
        "outputs": {"type": "array", "items": _TENSOR_METADATA},
        "parameters": _PARAMETERS,
    },
}

SERVER_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "extensions"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: "Bad request",
        404: "Unknown model or version",
        413: "Body too large",
        415: "Unsupported Content-Encoding",
        503: "Not ready or overloaded (see Retry-After)",
    }
    return {status: json_body(ERROR, texts[status]) for status in statuses}
