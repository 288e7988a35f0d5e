"""Checking request bodies and parameters the way the OpenAPI schemas describe them.

Pure functions that either return the parsed value or raise :class:`BadRequest` with a
message a person can act on; the HTTP layer turns that into ``400 {"message": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

MAX_ITEMS = 100
MAX_ID = 64
MAX_DETAILS = 100


class BadRequest(ValueError):
    """The request does not match its schema; ``str(exc)`` is the message to return."""


def parse_json(body: bytes) -> Any:
    if not body:
        raise BadRequest("request body is empty: expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise BadRequest(f"{where}: unknown field(s) {', '.join(map(repr, extra))}")


def _id_string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise BadRequest(f"{where} must be a string of 1 to {MAX_ID} characters")
    return value


def parse_webhook_id(body: dict[str, Any]) -> str | None:
    if "webhook_id" not in body:
        return None
    return _id_string(body["webhook_id"], "webhook_id")


def parse_item(raw: Any, where: str) -> tuple[str, dict[str, Any]]:
    """One ``{"id", "inputs"}`` item."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object with 'id' and 'inputs'")
    _check_keys(raw, {"id", "inputs"}, where)
    item_id = _id_string(raw.get("id"), f"{where}.id")
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict):
        raise BadRequest(f"{where}.inputs must be an object")
    return item_id, inputs


def parse_run_request(body: Any) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """The items and optional webhook id of a RunRoutineRequest."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'items'")
    _check_keys(body, {"items", "webhook_id"}, "request body")
    raw = body.get("items")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS:
        raise BadRequest(f"'items' must be an array of 1 to {MAX_ITEMS} items")
    items = [parse_item(entry, f"items[{i}]") for i, entry in enumerate(raw)]
    return items, parse_webhook_id(body)


def parse_start_batch(body: Any) -> tuple[str, str | None]:
    """The file id and optional webhook id of a StartBatchRequest."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'file_id'")
    _check_keys(body, {"file_id", "webhook_id"}, "request body")
    file_id = body.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise BadRequest("'file_id' must be the string returned by upload-url")
    return file_id, parse_webhook_id(body)


def parse_limit(raw: str | None, *, default: int, maximum: int = MAX_ITEMS) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'limit' must be an integer from 1 to {maximum}, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise BadRequest(f"'limit' must be from 1 to {maximum}, got {value}")
    return value


def parse_jsonl(
    data: bytes, max_rows: int
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]], int]:
    """Items of a batch file, with up to 100 error details and the count of invalid lines.

    Raises UnicodeDecodeError when the file is not text: that is a processing failure,
    not a validation one.
    """
    text = data.decode("utf-8")
    items: list[tuple[str, dict[str, Any]]] = []
    details: list[dict[str, Any]] = []
    invalid = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(parse_item(json.loads(line), "line"))
        except (json.JSONDecodeError, BadRequest) as exc:
            invalid += 1
            if len(details) < MAX_DETAILS:
                details.append(_detail(number, exc))
    if not items and not invalid:
        details.append({"line_number": 0, "field": "file", "message": "the file has no rows"})
        invalid = 1
    elif len(items) + invalid > max_rows:
        details = [
            {
                "line_number": max_rows + 1,
                "field": "file",
                "message": f"a batch holds at most {max_rows} rows",
            }
        ]
        invalid = len(items) + invalid - max_rows
    return items, details, invalid


def _detail(number: int, exc: Exception) -> dict[str, Any]:
    message = str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return {"line_number": number, "field": "line", "message": f"not valid JSON: {exc.msg}"}
    name = message.split(" ", 1)[0]
    field = name.removeprefix("line.").removeprefix("line:") if name.startswith("line") else "line"
    return {"line_number": number, "field": field or "line", "message": message}
