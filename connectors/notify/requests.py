"""The two request bodies, built from plain values and validated against their JSON Schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

EXT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json" / "ext"
BRANDED_CALL = "branded_call_request"
ALIMTALK = "kakao_alimtalk_request"
SCHEMA_NAMES = (BRANDED_CALL, ALIMTALK)


class InvalidRequest(ValueError):
    """A request body that does not match its schema (never sent)."""


def schema_path(name: str) -> Path:
    return EXT_SCHEMA_DIR / f"{name}.v1.schema.json"


def load_schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@cache
def _validator(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(name))


def validate(name: str, body: dict[str, Any]) -> None:
    try:
        _validator(name)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        # the message names the field and rule (fastjsonschema quotes no value in `name`)
        raise InvalidRequest(f"{name}: {exc.name} {exc.rule}") from None


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def branded_call(
    *,
    request_id: str,
    call_id: str,
    requested_ms: int,
    callee_number: str,
    caller_number: str,
    display_name: str,
    info_text: str,
    department: str,
    valid_for_s: int = 120,
) -> dict[str, Any]:
    body = {
        "schema": f"callguard/{BRANDED_CALL}.v1",
        "request_id": request_id,
        "call_id": call_id,
        "requested_ms": requested_ms,
        "callee_number": digits(callee_number),
        "caller_number": digits(caller_number),
        "display_name": display_name,
        "info_text": info_text,
        "department": department,
        "valid_for_s": valid_for_s,
    }
    validate(BRANDED_CALL, body)
    return body


DEFAULT_TEMPLATE = (
    "[서울시] {department}에서 전화드립니다.\n"
    "용건: {purpose}\n"
    "받지 못하셨다면 {callback_number}(으)로 연락 주십시오."
)


def alimtalk(
    *,
    request_id: str,
    call_id: str,
    requested_ms: int,
    recipient_number: str,
    department: str,
    purpose: str,
    callback_number: str,
    platform: str,
    template_code: str = "CALLGUARD_CALL_NOTICE",
    template: str = DEFAULT_TEMPLATE,
    sender_key: str = "",
) -> dict[str, Any]:
    variables = {"department": department, "purpose": purpose, "callback_number": callback_number}
    body = {
        "schema": f"callguard/{ALIMTALK}.v1",
        "request_id": request_id,
        "call_id": call_id,
        "requested_ms": requested_ms,
        "sender_key": sender_key,
        "template_code": template_code,
        "recipient_number": digits(recipient_number),
        "variables": variables,
        "message": template.format(**variables),
        "platform": platform,
    }
    validate(ALIMTALK, body)
    return body
