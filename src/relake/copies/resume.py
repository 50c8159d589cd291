"""The record of a clean's finished units, ``OUT/.relake-clean.json``: a rerun after an interruption skips the
units whose sources are unchanged and whose outputs still have their sha256, and redoes the rest."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from relake.copies.write import TMP_SUFFIX, folder_digest
from relake.errors import InputError
from relake.jsonfile import read_json
from relake.record import sha256_file

__all__ = ["INCOMPLETE_NAME", "PDQ_CACHE_NAME", "RECORD_FORMAT", "RECORD_NAME", "finished", "lock_out", "open_record",
           "source_ids", "unfinished", "write_record"]

RECORD_NAME = ".relake-clean.json"
RECORD_FORMAT = "relake.clean/1"
PDQ_CACHE_NAME = ".relake-pdq"  # per-shard PDQ results of a clean's check (copies.perceptual), until it completes
INCOMPLETE_NAME = ".relake-clean.incomplete"  # written first and removed last by a clean: its output is unfinished


@contextmanager
def lock_out(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``out`` (created if missing) while a clean writes into it; a second
    clean into it fails at once. ``flock`` on the folder itself: nothing is left behind, and the kernel drops
    the lock when the process ends however it ends."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another relake clean is writing into --out {out}; wait for it to finish, or choose "
                             "another folder") from None
        yield
    finally:
        os.close(fd)


def unfinished(folder: Path) -> str | None:
    """None unless ``folder`` is the output of a clean that has not finished (it holds ``INCOMPLETE_NAME``, or a
    record not marked complete); then the copy that clean read, as recorded ("" when unknown)."""
    marker = (folder / INCOMPLETE_NAME).exists()
    try:
        record = _read_record(folder / RECORD_NAME)
    except InputError:
        return "" if marker else None
    if marker or record.get("complete") is not True:
        copy = record.get("copy")
        return copy if isinstance(copy, str) else ""
    return None


def _read_record(path: Path) -> dict[str, Any]:
    """A clean record, read by the bounded JSON reader; InputError unless it is one."""
    record = read_json(path, "clean record")
    if record.get("format") != RECORD_FORMAT or not isinstance(record.get("units"), dict):
        raise InputError(f"{path}: corrupt or unreadable clean record (not a {RECORD_FORMAT} record)")
    return record


def open_record(out: Path, copy: Path, plan_id: str) -> dict[str, Any]:
    path = out / RECORD_NAME
    fresh = {"format": RECORD_FORMAT, "copy": str(copy.resolve()), "plan": plan_id, "complete": False, "units": {}}
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    if not path.is_file():
        if out.is_dir() and any(p.name != PDQ_CACHE_NAME for p in out.iterdir()):
            raise InputError(f"--out {out} is not empty and holds no {RECORD_NAME} from an earlier clean; "
                             "choose an empty or new folder")
        out.mkdir(parents=True, exist_ok=True)
        write_record(out, fresh)  # first, so a crash at any later point leaves a folder a rerun resumes
        return fresh
    then = f"; remove {out} and clean again"
    record = read_json(path, "clean record", then=then)
    if record.get("format") != RECORD_FORMAT or not isinstance(record.get("units"), dict):
        raise InputError(f"{path}: corrupt or unreadable clean record (not a {RECORD_FORMAT} record){then}")
    if record.get("copy") != fresh["copy"] or record.get("plan") != plan_id:
        raise InputError(f"--out {out} holds a clean of another copy or with other matches (another manifest or "
                         "release); choose another folder, or remove it to start over")
    record["complete"] = False
    return dict(record)


def write_record(out: Path, record: dict[str, Any]) -> None:
    tmp = out / (RECORD_NAME + TMP_SUFFIX)
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / RECORD_NAME)


def source_ids(paths: Sequence[Path]) -> dict[str, Any]:
    """Size and mtime of each source file; for a sample folder (key ``name/``), its file count and a digest of
    its files' names, sizes and mtimes."""
    out: dict[str, Any] = {}
    for p in paths:
        if p.is_dir():
            listing = hashlib.sha256()
            files = sorted(f for f in p.iterdir() if f.is_file())
            for f in files:
                st = f.stat()
                listing.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
            out[p.name + "/"] = [len(files), listing.hexdigest()]
            continue
        st = p.stat()
        out[p.name] = [st.st_size, st.st_mtime_ns]
    return out


def finished(entry: dict[str, Any] | None, out: Path, sources: dict[str, list[int]]) -> bool:
    """An earlier run finished this unit from the same sources, and its outputs still have their sha256."""
    if not isinstance(entry, dict) or entry.get("sources") != sources:
        return False
    outputs = entry.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return False
    for rel, digest in outputs.items():
        p = out / rel
        if rel.endswith("/"):
            if not p.is_dir() or folder_digest(p) != digest:
                return False
        elif not p.is_file() or sha256_file(p) != digest:
            return False
    return True
