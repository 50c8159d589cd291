"""The one way relake reads a JSON file it may not have written (``version.json``, ``blocklist.json``,
``manifest.json``, img2dataset's ``_stats.json``, a clean's ``.relake-clean.json``): bounded in size and nesting, its
top level an object, ``NaN``/``Infinity`` and numbers out of a float's range refused, and every failure one
:class:`~relake.errors.InputError` naming the file, never a ``RecursionError`` or a traceback.

:func:`check_types` then checks a dataclass built from such JSON against its own annotations (an ``int`` count is an
``int``, not a string or a float), so a record with a wrong field type is refused where it is read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from relake.errors import InputError

__all__ = ["JSON_ERRORS", "MAX_BYTES", "MAX_DEPTH", "check_types", "parse_json", "read_json", "read_json_text"]

MAX_DEPTH = 64  # arrays and objects nested deeper than this are refused (relake's own files nest 4 deep)
MAX_BYTES = 256 << 20  # a larger file is refused before it is read (a version.json of 100k shards is ~30 MB)
JSON_ERRORS = (OSError, UnicodeDecodeError, ValueError)  # what the functions below raise, for callers' messages


def read_json_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``, refused (ValueError) past ``max_bytes``; raises one of :data:`JSON_ERRORS`."""
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MiB, not a file relake reads")
    return data.decode("utf-8")


def parse_json(text: str) -> dict[str, Any]:
    """A JSON object; ValueError for bad JSON, a non-object top level, ``NaN``/``Infinity``, an integer of more than
    4300 digits, or nesting deeper than :data:`MAX_DEPTH`."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES >> 20} MiB, not a file relake reads")
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {_json_type(data)}")
    _check_depth(data)
    return data


def read_json(path: Path, what: str, *, then: str = "") -> dict[str, Any]:
    """The JSON object in ``path``; otherwise ``InputError("PATH: corrupt or unreadable WHAT (why)THEN")``."""
    try:
        return parse_json(read_json_text(path))
    except JSON_ERRORS as exc:
        why = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        raise InputError(f"{path}: corrupt or unreadable {what} ({why}){then}") from exc


def check_types(record: Any, where: str = "") -> None:
    """Raise ValueError unless every field of dataclass ``record`` (recursively) has its annotated type."""
    problem = _problem(record, type(record), where)
    if problem:
        raise ValueError(problem)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _check_depth(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _problem(value: Any, tp: Any, where: str) -> str | None:
    """Why ``value`` is not of type ``tp`` (a message naming ``where``), or None."""
    origin, args = get_origin(tp), get_args(tp)
    here = where or "value"
    if tp is Any:
        return None
    if origin in (Union, types.UnionType):
        problems = [_problem(value, a, where) for a in args]
        return None if None in problems else f"{here}: {_json_type(value)} is not {_describe(tp)}"
    if origin is Literal:
        return None if any(value == a and type(value) is type(a) for a in args) else (
            f"{here}: {value!r} is not one of {', '.join(repr(a) for a in args)}"[:200])
    if origin in (tuple, list):
        if not isinstance(value, origin):
            return f"{here}: expected {_describe(tp)}, found {_json_type(value)}"
        variadic = (len(args) == 2 and args[1] is Ellipsis) or origin is list
        item_types = [args[0]] * len(value) if variadic else list(args)
        if len(item_types) != len(value):
            return f"{here}: expected {len(item_types)} items, found {len(value)}"
        for i, (item, item_type) in enumerate(zip(value, item_types, strict=True)):
            if p := _problem(item, item_type, f"{where}[{i}]"):
                return p
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"{here}: expected an object, found {_json_type(value)}"
        for k, v in value.items():
            if p := _problem(k, args[0], f"{where} key") or _problem(v, args[1], f"{where}[{k!r}]"):
                return p
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, tp):
            return f"{here}: expected an object, found {_json_type(value)}"
        hints = get_type_hints(tp)
        for f in dataclasses.fields(tp):
            if p := _problem(getattr(value, f.name), hints[f.name], f"{where}.{f.name}" if where else f.name):
                return p
        return None
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is type(None):
        ok = value is None
    else:
        ok = isinstance(value, tp)
    return None if ok else f"{here}: expected {_describe(tp)}, found {_json_type(value)}"


def _describe(tp: Any) -> str:
    names = {int: "an integer", str: "a string", bool: "a boolean", float: "a number", type(None): "null"}
    if tp in names:
        return names[tp]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "an array"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "an object"
    return getattr(tp, "__name__", str(tp))
