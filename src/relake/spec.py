"""The release spec (TOML, reviewed in git like code) and its strict validation.

    name = "relaion-research"
    base = "laion-original"
    min_crowd = 1000                  # optional: K for the public manifest's crowd rule
    [params]                          # values bound as $name into `where` predicates
    keywords = "(^|\\W)(nsfw|xxx)(\\W|$)"
    [[rule]]
    id = "partner-image-hashes"
    blocklist = "partner-md5"         # an imported blocklist (relake blocklist add)
    category = "safety"               # the only label that reaches the public manifest
    sensitive = true
    column = "md5"                    # image-hash kinds: a column of the base ...
    side = "laion-md5"                # ... or a side table (lake version or parquet path)
    side_key = "SAMPLE_ID"            #     joined by this side column to the base's id (or url) role
    side_hash = "md5"                 #     whose hash column is this
    [[rule]]
    id = "unsafe-keyword"
    where = "punsafe > 0.95 AND regexp_matches(lower(TEXT), $keywords)"
    category = "safety"

A ``where`` is an SQL boolean expression over the base's columns: code, not data. It is parsed by DuckDB as
one expression before use; every value it needs comes from ``[params]`` and is bound, never formatted.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relake.errors import InvalidNameError, SpecError
from relake.lake import split_revision, validate_name

_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RULE_KEYS = {"id", "blocklist", "where", "category", "sensitive", "column", "side", "side_key", "side_hash",
              "side_join"}
_TOP_KEYS = {"name", "base", "rule", "params", "min_crowd", "description"}


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    sensitive: bool = False
    blocklist: str | None = None
    where: str | None = None
    column: str | None = None
    side: str | None = None
    side_key: str | None = None
    side_hash: str | None = None
    side_join: str | None = None  # "id" (default) or "url": the base role the side key joins to


@dataclass(frozen=True)
class Spec:
    name: str
    base: str
    rules: tuple[Rule, ...]
    params: dict[str, Any] = field(default_factory=dict)
    min_crowd: int = 1000
    description: str = ""
    sha256: str = ""
    text: str = ""


def load_spec(path: Path) -> Spec:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror})") from exc
    return parse_spec(raw, str(path))


def _toml_type(v: Any) -> str:
    if isinstance(v, list):
        inner = sorted({_toml_type(x) for x in v if not isinstance(x, str | int | float | bool)})
        return f"a list holding {', '.join(inner)}" if inner else "a list"
    return {"date": "a date", "datetime": "a date-time", "time": "a time", "dict": "a table"}.get(
        type(v).__name__, type(v).__name__)


def parse_spec(raw: bytes, where: str = "spec") -> Spec:
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{where}: not valid TOML ({exc})") from exc
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply to be a release spec") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("name", "base"):
        if not isinstance(data.get(key), str):
            raise SpecError(f"{where}: '{key}' must be given as a string")
    _check_name(data["name"], "version", f"{where}: 'name'")
    _check_name(data["base"], "version", f"{where}: 'base'")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise SpecError(f"{where}: [params] must be a table")
    for k, v in params.items():
        if not _PARAM.fullmatch(k):
            raise SpecError(f"{where}: param name {k!r} must be a plain identifier")
        if k == "rule":
            raise SpecError(f"{where}: param name 'rule' is reserved (each rule's id is bound as $rule); rename it")
        scalar = str | int | float | bool
        if not (isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v))):
            raise SpecError(f"{where}: param {k!r} must be a string, number, boolean or a flat list of them "
                            f"(not {_toml_type(v)})")
    rules_raw = data.get("rule", [])
    if not isinstance(rules_raw, list) or not rules_raw:
        raise SpecError(f"{where}: the spec has no [[rule]] entries")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(rules_raw, 1):
        rules.append(_rule(r, i, where, seen))
    min_crowd = data.get("min_crowd", 1000)
    if not isinstance(min_crowd, int) or isinstance(min_crowd, bool) or min_crowd < 0:
        raise SpecError(f"{where}: min_crowd must be a non-negative integer")
    return Spec(
        name=data["name"], base=data["base"], rules=tuple(rules), params=dict(params), min_crowd=min_crowd,
        description=str(data.get("description", "")), sha256=hashlib.sha256(raw).hexdigest(), text=text,
    )


def _check_name(value: str, what: str, context: str) -> None:
    """validate_name, as a SpecError that says where in the spec the bad name is."""
    try:
        validate_name(value, what)
    except InvalidNameError as exc:
        raise SpecError(f"{context}: {exc}") from None


def _rule(r: Any, i: int, where: str, seen: set[str]) -> Rule:
    if not isinstance(r, dict):
        raise SpecError(f"{where}: rule #{i} must be a table")
    unknown = set(r) - _RULE_KEYS
    if unknown:
        raise SpecError(f"{where}: rule #{i}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    rid = r.get("id")
    if not isinstance(rid, str):
        raise SpecError(f"{where}: rule #{i} needs an 'id'")
    _check_name(rid, "rule id", f"{where}: rule #{i}")
    if rid in seen:
        raise SpecError(f"{where}: rule id {rid!r} is used twice")
    seen.add(rid)
    cat = r.get("category")
    if not isinstance(cat, str):
        raise SpecError(f"{where}: rule {rid!r} needs a 'category' (the label the public manifest shows)")
    _check_name(cat, "category", f"{where}: rule {rid!r}")
    has_bl, has_where = "blocklist" in r, "where" in r
    if has_bl == has_where:
        raise SpecError(f"{where}: rule {rid!r} needs exactly one of 'blocklist' or 'where'")
    for k in ("blocklist", "where", "column", "side", "side_key", "side_hash", "side_join"):
        if k in r and not isinstance(r[k], str):
            raise SpecError(f"{where}: rule {rid!r}: '{k}' must be a string")
    if has_bl:
        try:
            split_revision(r["blocklist"])  # NAME, or NAME@REV for one revision of it
        except InvalidNameError as exc:
            raise SpecError(f"{where}: rule {rid!r}: {exc}") from None
    if has_where and (not r["where"].strip() or ";" in r["where"]):
        raise SpecError(f"{where}: rule {rid!r}: 'where' must be one non-empty SQL expression (no ';')")
    image_keys = sorted(k for k in ("column", "side", "side_key", "side_hash", "side_join") if k in r)
    if has_where and image_keys:
        raise SpecError(f"{where}: rule {rid!r}: {image_keys} apply to image-hash blocklist rules, not to 'where'")
    side_only = [k for k in image_keys if k.startswith("side_")]
    if side_only and "side" not in r:
        raise SpecError(f"{where}: rule {rid!r}: {side_only} need a 'side' table")
    if "side" in r and "column" in r:
        raise SpecError(f"{where}: rule {rid!r}: give 'column' or 'side', not both")
    if r.get("side_join", "id") not in ("id", "url"):
        raise SpecError(f"{where}: rule {rid!r}: side_join must be 'id' or 'url'")
    sensitive = r.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise SpecError(f"{where}: rule {rid!r}: 'sensitive' must be true or false")
    return Rule(id=rid, category=cat, sensitive=sensitive, blocklist=r.get("blocklist"), where=r.get("where"),
                column=r.get("column"), side=r.get("side"), side_key=r.get("side_key"),
                side_hash=r.get("side_hash"), side_join=r.get("side_join"))
