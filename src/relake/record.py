"""The version record (``version.json``): frozen dataclasses, JSON in and out, file hashing. (The removal
manifest, a different thing, is ``publish.py``'s ``Manifest``.)"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from relake.errors import InputError
from relake.jsonfile import check_types, parse_json
from relake.report import HIDDEN, Report, json_meta

FORMAT = "relake.version/1"
# a record with ``storage: "vector"`` (its rows are its lineage root's shards minus a deletion vector) is written as
# format 2, so an older relake refuses it instead of reading the root's shards whole as this version's rows; every
# other record is still written as format 1, byte for byte as before, and both are read
VECTOR_FORMAT = "relake.version/2"
FORMATS = (FORMAT, VECTOR_FORMAT)
_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Shard:
    path: str  # relative to the version folder, or absolute when referenced in place
    rows: int
    bytes: int
    sha256: str
    schema: tuple[Column, ...] = ()


@dataclass(frozen=True)
class OwnedFile:
    """A file of a version folder other than its shards (``removed.parquet``): checked before it is read."""

    path: str  # relative to the version folder
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Fingerprint:
    """Order- and shard-invariant content fingerprint (see fingerprint.py for the definition)."""

    algorithm: str
    rows: int
    value: str
    buckets: dict[str, tuple[int, str]] = field(default_factory=dict, metadata=HIDDEN)  # in version.json only


@dataclass(frozen=True)
class Roles:
    url: str | None
    caption: str | None
    id: str | None

    @property
    def text(self) -> str:
        """The roles as ``show`` prints them: ``url=URL caption=TEXT id=SAMPLE_ID``, a missing one as ``no id``."""
        return " ".join(f"{role}={col}" if col is not None else f"no {role}"
                        for role, col in (("url", self.url), ("caption", self.caption), ("id", self.id)))


@dataclass(frozen=True)
class Vector:
    """A derived version stored as a deletion vector: the rows of its lineage root's shards (``Version.shards``,
    the root's files) except, per shard, the sorted positions listed in ``path`` (an owned file of the version:
    one row per dropped row, ``(shard, position)``; every generation since the root composed). ``kept`` is each
    root shard's surviving row count."""

    root: str
    path: str  # relative to the version folder; also in Version.files with its size and sha256
    kept: tuple[int, ...]
    dropped: int


VersionKind = Literal["original", "derived"]
Storage = Literal["lake", "reference", "vector"]


@dataclass(frozen=True)
class Version(Report):
    """A version's record: ``to_json()`` is its ``version.json``; ``to_dict()`` what ``relake show --json`` prints
    (the same, without the fingerprint's 256 buckets)."""

    name: str
    kind: VersionKind
    parent: str | None
    roles: Roles
    schema: tuple[Column, ...]
    rows: int
    bytes: int
    shards: tuple[Shard, ...]
    fingerprint: Fingerprint
    tool: dict[str, str]
    sources: tuple[str, ...] = ()
    storage: Storage = "lake"  # files inside the version folder, or referenced in place
    recipe: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    files: tuple[OwnedFile, ...] = ()  # besides the shards (empty: none, or recorded by an older relake)
    vector: Vector | None = field(default=None, metadata=json_meta(omit_none=True))  # storage "vector" (format 2)

    def to_json(self) -> str:
        data = asdict(self)
        if self.vector is None:
            data.pop("vector")  # a format-1 record, as an older relake wrote it
        data = {"format": VECTOR_FORMAT if self.vector is not None else FORMAT, **data}
        return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> Version:
        try:
            data = parse_json(text)
            fmt = data.pop("format", None)
            if fmt not in FORMATS:
                raise ValueError(f"not a {' or '.join(FORMATS)} record (a newer relake's? upgrade relake)")
            vector = data.pop("vector", None)
            if (fmt == VECTOR_FORMAT) != (vector is not None) or (vector is not None) != (
                    data.get("storage") == "vector"):
                raise ValueError("storage 'vector', a 'vector' entry and format 2 go together")
            if vector is not None:
                data["vector"] = Vector(root=vector["root"], path=vector["path"],
                                        kept=tuple(int(k) for k in vector["kept"]), dropped=int(vector["dropped"]))
                if len(data["vector"].kept) != len(data["shards"]):
                    raise ValueError("the vector's kept counts and the shards differ in number")
            data["roles"] = Roles(**data["roles"])
            data["schema"] = _columns(data["schema"])
            data["shards"] = tuple(
                Shard(**{**s, "schema": _columns(s.get("schema", ()))}) for s in data["shards"]
            )
            fp = data["fingerprint"]
            data["fingerprint"] = Fingerprint(
                algorithm=fp["algorithm"],
                rows=fp["rows"],
                value=fp["value"],
                buckets={k: (int(v[0]), str(v[1])) for k, v in fp.get("buckets", {}).items()},
            )
            if not isinstance(data.get("sources", []), list):
                raise TypeError("'sources' must be a list")
            data["sources"] = tuple(data.get("sources", ()))
            data["files"] = tuple(OwnedFile(**f) for f in data.get("files", ()))
            version = Version(**data)
            check_types(version)
            return version
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise InputError(f"{where}: corrupt or unreadable version record ({exc}); "
                             "restore it from a backup or re-create the version") from exc

    def shard_path(self, version_dir: Path, shard: Shard) -> Path:
        p = Path(shard.path)
        return p if p.is_absolute() else version_dir / p

    def shard_rows(self) -> tuple[int, ...]:
        """The rows of each shard that are this version's: all of them, or those its deletion vector keeps."""
        return self.vector.kept if self.vector is not None else tuple(s.rows for s in self.shards)


@dataclass(frozen=True)
class VersionEntry(Report):
    """One version as ``relake versions`` lists it."""

    name: str
    parent: str | None
    kind: VersionKind
    rows: int
    shards: int
    fingerprint: str
    storage: Storage = "lake"

    @staticmethod
    def of(version: Version) -> VersionEntry:
        return VersionEntry(version.name, version.parent, version.kind, version.rows, len(version.shards),
                            version.fingerprint.value, version.storage)


@dataclass(frozen=True)
class VersionListing(Report):
    """The lake's versions (``relake versions``; its JSON is the list of entries) and those skipped as
    unreadable, each with the reason (warned about, not in the JSON)."""

    json_root = "versions"

    root: Path = field(metadata=HIDDEN)
    versions: list[VersionEntry]
    skipped: list[tuple[str, str]] = field(default_factory=list, metadata=HIDDEN)


def _columns(items: Iterable[Any]) -> tuple[Column, ...]:
    return tuple(Column(**c) if isinstance(c, dict) else Column(*c) for c in items)
