"""Reports: what a library call returns, a dataclass whose JSON comes from its fields (STYLE item 15).

``Report.to_dict()`` walks ``dataclasses.fields``: each field becomes a key of the same name, its value made JSON
(a ``Path`` a string, an ``Enum`` its value, a tuple a list, a nested dataclass, list or dict recursively). A field
can say otherwise in its metadata, ``field(metadata=json_meta(...))``:

- ``show=False``: left out (handles, internal lists, anything that may hold row values);
- ``name="…"``: another key;
- ``within="…"``: nested under that key, as ``rows: {"a": …, "b": …}`` (the group sits where its first field is);
- ``convert=f``: the key's value is ``f(value)`` (then made JSON), e.g. ``rounded`` seconds;
- ``omit_none=True``: no key at all while the value is None.

Values a report computes from its fields (``identical``, ``ok``) are properties named in ``json_computed``; they
follow the fields. A listing whose JSON is a plain list names that one field in ``json_root``. So adding a field to
a report adds it to every ``--json`` that prints the report, and the CLI never writes a dict by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any, ClassVar

__all__ = ["HIDDEN", "Report", "a_or_an", "json_meta", "json_value", "plural", "rounded"]

_SHOW = "json"
_NAME = "json_name"
_WITHIN = "json_within"
_CONVERT = "json_convert"
_OMIT_NONE = "json_omit_none"


def json_meta(
    *,
    show: bool = True,
    name: str | None = None,
    within: str | None = None,
    convert: Callable[[Any], Any] | None = None,
    omit_none: bool = False,
) -> dict[str, Any]:
    """A field's ``metadata`` saying how it appears in its report's JSON (module docstring):
    ``field(default=0.0, metadata=json_meta(convert=rounded))``."""
    return {_SHOW: show, _NAME: name, _WITHIN: within, _CONVERT: convert, _OMIT_NONE: omit_none}


HIDDEN = json_meta(show=False)  # ``field(metadata=HIDDEN)``: never in the JSON


def rounded(seconds: float) -> float:
    """Seconds as reports print them: to the millisecond."""
    return round(seconds, 3)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``n`` and its noun, singular for exactly one: ``1 shard``, ``2 shards``, ``1 entry``, ``3 entries``
    (``many`` for any other irregular plural). The one helper every count in a message goes through."""
    if n == 1:
        return f"{n:,} {noun}"
    if many is None:
        many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else (
            noun + "es" if noun.endswith(("s", "x", "ch", "sh")) else noun + "s")
    return f"{n:,} {many}"


def a_or_an(word: str) -> str:
    """``word`` with its indefinite article: ``an id``, ``a url``, ``an image``."""
    return f"{'an' if word[:1].lower() in 'aeio' else 'a'} {word}"


class Report:
    """Mixin for a report dataclass: ``to_dict()`` is its JSON, derived from its fields (module docstring)."""

    json_computed: ClassVar[tuple[str, ...]] = ()
    json_root: ClassVar[str | None] = None

    def to_dict(self) -> Any:
        """The report as JSON-ready data: a dict of its fields (or, with ``json_root``, that field's value)."""
        return _dataclass_json(self)


def json_value(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses by their fields, paths as strings, enums by value, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_json(value)
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(json_value(k)): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def _dataclass_json(obj: Any) -> Any:
    root = getattr(type(obj), "json_root", None)
    if root is not None:
        return json_value(getattr(obj, root))
    data: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        meta = f.metadata
        if not meta.get(_SHOW, True):
            continue
        value = getattr(obj, f.name)
        if value is None and meta.get(_OMIT_NONE, False):
            continue
        convert = meta.get(_CONVERT)
        if convert is not None:
            value = convert(value)
        key = meta.get(_NAME) or f.name
        within = meta.get(_WITHIN)
        target = data if within is None else data.setdefault(within, {})
        target[key] = json_value(value)
    for name in getattr(type(obj), "json_computed", ()):
        data[name] = json_value(getattr(obj, name))
    return data
