"""Sample keys as relake compares them: the parquet's ``key`` column against the names in a shard's side.

img2dataset names a sample's files ``{key}.{ext}`` (``000000012.jpg``) and writes ``key`` in the parquet as
zero-padded text. Copies drift from that: tars re-packed with a folder prefix (``00000/000000012.jpg``,
``./000000012.jpg``), a key column that became an integer after a pandas or CSV round trip (``12``), or a
float (``12.0``). So both sides are compared by their *normal key* (``normal_key``): the basename, up to its
first '.', with any folder prefix and ``./`` dropped, and a key of digits alone compared as a number
(``000000012`` = ``12``). Two different spellings that meet in one normal key within a shard (``12`` and
``012``; ``a/12.jpg`` and ``b/12.jpg``) are refused (``index_rows``, ``index_side``): relake could not tell
which sample is which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from relake.errors import InputError

__all__ = ["SampleKeys", "index_rows", "index_side", "member_key", "normal_key"]

_MEMBER_KEY = re.compile(r"((?:.*/|)[^.]+)[.]([^/]*)")  # webdataset's split: key = path to the basename's first '.'


def member_key(name: str) -> str:
    """A member's sample key as webdataset reads it: the path up to the first '.' of the basename (``./``
    dropped). Names a spelling in messages and tells two spellings apart."""
    name = name.removeprefix("./")
    m = _MEMBER_KEY.fullmatch(name)
    return m.group(1) if m else name


def normal_key(name: str) -> str:
    """The key a parquet key or a side's member (file, record) name is compared by: the basename up to its first
    '.', and a key of ASCII digits alone without its leading zeros (``00000/000000012.jpg`` → ``12``)."""
    stem = name.rpartition("/")[2].split(".", 1)[0]
    if stem.isascii() and stem.isdigit():
        return stem.lstrip("0") or "0"
    return stem


class SampleKeys(set[str]):
    """A set of normal keys whose ``in`` normalises what is asked: ``"00000/000000012.jpg" in SampleKeys(["12"])``.

    Clean hands one to ``Layout.filter`` as its ``drop``, so a layout comparing the keys or names it reads with
    ``in drop`` matches them however they are spelled."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__(normal_key(k) for k in keys)

    def add(self, key: str) -> None:
        super().add(normal_key(key))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(normal_key(name))


def index_rows(label: str, keys: Iterable[str | None]) -> dict[str, str]:
    """The parquet keys of shard ``label`` by normal key (NULL keys left out); refused when two different
    spellings (``12`` and ``012``) are one normal key."""
    out: dict[str, str] = {}
    for key in keys:
        if key is None:
            continue
        normal = normal_key(key)
        seen = out.setdefault(normal, key)
        if seen != key:
            raise InputError(f"{label}: parquet keys {seen!r} and {key!r} are the same key once folder prefixes, "
                             "extensions and leading zeros are ignored; relake cannot tell their samples' files "
                             "apart, give each row its own key")
    return out


def index_side(label: str, names: Iterable[str]) -> dict[str, str]:
    """The member (file, record) ``names`` of shard ``label``'s side by normal key, each as its first member's
    key is spelled (``member_key``); refused when two spellings meet in one normal key (``12.jpg`` and
    ``012.jpg``, ``a/12.jpg`` and ``b/12.jpg``). Repeated members of one spelling are one sample's."""
    out: dict[str, str] = {}
    for name in names:
        spelled = member_key(name)
        seen = out.setdefault(normal_key(name), spelled)
        if seen != spelled:
            raise InputError(f"{label}: members {seen!r} and {spelled!r} are one sample key once folder prefixes "
                             "and leading zeros are ignored; relake cannot tell which sample is which (re-pack "
                             "the shard with one spelling per key)")
    return out
