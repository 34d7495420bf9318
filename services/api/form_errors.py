"""Validation errors in plain words: pydantic's messages ("String should have at least 1
character", "Value error, ...") rewritten as an admin reads them, per field. The field itself
(`loc`) and the error type stay as they are, and the submitted value is never echoed (it may
be a secret)."""
from __future__ import annotations

from typing import Any


def plain_message(error: dict[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    msg = str(error.get("msg", ""))
    if kind == "missing":
        return "required: fill this in"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "required: fill this in" if n == 1 else f"too short: at least {n} characters"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"too many: at most {ctx.get('max_length')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less"
    if kind == "extra_forbidden":
        return "not a field of this form"
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
