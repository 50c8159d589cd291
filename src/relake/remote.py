"""Sources in object storage (``s3://``, ``gs://``, ``hf://``, ``memory://``, ``file://`` …), read through fsspec.

Only ``ingest --copy`` reads them: each file is streamed into the version's staging folder, and everything after
that (facts, schema checks, fingerprint) reads the local copy. fsspec is optional and imported only here, only
when a URI is given. Credentials in a URI (``scheme://user:secret@host/…``) never reach a manifest or a message:
labels are built without them and error text is scrubbed of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from relake.errors import InputError, NotFoundError, first_line
from relake.lake import has_glob_chars

# a scheme, or fsspec's chained form (simplecache::s3://…)
_SCHEME = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*::)*[A-Za-z][A-Za-z0-9+.\-]*)://")
# userinfo anywhere in a text: scheme://user:secret@
_ANY_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]*@")
_CHUNK = 8 << 20
_SHORTEST_SECRET = 6  # a secret shorter than this is not replaced on its own (it would mangle ordinary words)
# exceptions raised by a file system's client library (not OSError subclasses) are reported, not raised loudly
_CLIENT_PACKAGES = frozenset({"fsspec", "s3fs", "gcsfs", "adlfs", "huggingface_hub", "botocore", "aiobotocore",
                              "aiohttp", "google", "azure", "requests"})
FSSPEC_HINT = ("reading remote sources needs fsspec: pip install 'relake[remote]' plus the file system's package "
               "(s3fs for s3://, gcsfs for gs://, huggingface_hub for hf://)")


def is_uri(source: str) -> bool:
    """Whether a source names a URL scheme (``s3://…``) rather than a local path."""
    return _SCHEME.match(source) is not None


def _userinfo(uri: str) -> str:
    """The ``user:secret`` part of a URI's authority (before the first ``/``, ``?`` or ``#``), or ""."""
    m = _SCHEME.match(uri)
    if not m:
        return ""
    authority = re.split(r"[/?#]", uri[m.end():], maxsplit=1)[0]
    return authority.rpartition("@")[0]


def redact(uri: str) -> str:
    """The URI without its userinfo (``s3://key:secret@bucket/x`` -> ``s3://bucket/x``) and, for http(s), without
    its query string or fragment (where signatures and tokens travel)."""
    info = _userinfo(uri)
    if info:
        m = _SCHEME.match(uri)
        assert m is not None
        uri = uri[: m.end()] + uri[m.end() + len(info) + 1:]
    if _is_http(uri):
        uri = re.split(r"[?#]", uri, maxsplit=1)[0]
    return uri


def redact_text(text: str) -> str:
    """``text`` without any ``scheme://user:secret@`` userinfo in it (for messages about sources not yet parsed)."""
    return _ANY_USERINFO.sub(r"\1", text)


def _is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def scrub(text: str, uri: str) -> str:
    """``text`` (a label or an error message) with the credentials of ``uri`` taken out wherever they appear:
    its userinfo and, for http(s), its query string and fragment."""
    if _is_http(uri):
        query = re.search(r"[?#].*$", uri)
        if query:
            text = text.replace(query.group(0), "")
    info = _userinfo(uri)
    if not info:
        return text
    text = text.replace(info + "@", "")
    if len(info) >= _SHORTEST_SECRET:
        text = text.replace(info, "***")
    secret = info.partition(":")[2]
    return text.replace(secret, "***") if len(secret) >= _SHORTEST_SECRET else text


@dataclass(frozen=True)
class RemoteFile:
    """One file found in object storage: its file system, its path there, and a label without credentials."""

    uri: str  # what is recorded and printed, never with credentials
    size: int | None
    fs: Any = field(repr=False, compare=False)
    path: str = field(repr=False)
    given: str = field(repr=False, compare=False)  # the source as given (may hold credentials): for scrubbing only


@contextmanager
def client_errors(uri: str, shown: str | None = None) -> Iterator[None]:
    """Network, permission and client-library errors while reading ``uri`` -> one ``InputError`` line naming it
    (or ``shown``), without its credentials."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, OSError) and type(exc).__module__.split(".")[0] not in _CLIENT_PACKAGES:
            raise
        shown = shown or redact(uri)
        raise InputError(scrub(f"{shown}: cannot read ({type(exc).__name__}: {first_line(exc)})", uri)) from None


def _file_system(uri: str) -> tuple[Any, str]:
    """fsspec's file system for ``uri`` and the path in it; clear one-line errors when fsspec or the file system's
    package is missing or the protocol is unknown."""
    shown = redact(uri)
    try:
        from fsspec.core import url_to_fs
        from fsspec.registry import available_protocols, known_implementations
    except ImportError:
        raise InputError(f"{shown}: {FSSPEC_HINT}") from None
    scheme = uri.split("://", 1)[0].lower()
    try:
        with client_errors(uri):
            fs, path = url_to_fs(uri)
    except ImportError as exc:
        cls = str(known_implementations.get(scheme, {}).get("class", ""))
        package = cls.split(".")[0]
        if package and package != "fsspec":
            raise InputError(f"{shown}: reading {scheme}:// needs {package}: pip install {package}") from None
        raise InputError(scrub(f"{shown}: reading {scheme}:// needs a package that is missing ({first_line(exc)})",
                               uri)) from None
    except ValueError as exc:
        if scheme not in available_protocols():
            raise InputError(f"{shown}: fsspec knows no file system for {scheme}://; install the package that "
                             "provides it (s3fs for s3://, gcsfs for gs://, huggingface_hub for hf://)") from None
        raise InputError(scrub(f"{shown}: {first_line(exc)}", uri)) from None
    return fs, str(path)


def resolve_remote(uri: str) -> list[RemoteFile]:
    """A file, a folder (every ``*.parquet`` below, sorted, skipping parts starting with ``.`` or ``_``) or a glob
    (expanded by fsspec), like local sources."""
    shown = redact(uri)
    if _is_http(uri) and re.search(r"[?#]", uri):
        raise InputError(f"{shown}: a URL with a query string is not accepted (it may carry a signature or token, "
                         "which would be recorded); download the file first or use the file system's credentials")
    fs, root = _file_system(uri)
    with client_errors(uri):
        if fs.isdir(root):
            listing = fs.find(root, detail=True)
            found = {p: i for p, i in listing.items() if p.endswith(".parquet") and not _hidden(p, root)}
            if not found:
                raise NotFoundError(f"{shown}: folder holds no .parquet files")
        elif fs.isfile(root):
            found = {root: fs.info(root)}
        elif has_glob_chars(root):
            found = dict(fs.glob(root, detail=True))
            if not any(i.get("type") == "file" for i in found.values()):
                raise NotFoundError(f"{shown}: pattern matches no files")
        else:
            raise NotFoundError(f"{shown}: no such file or folder")
    return [RemoteFile(scrub(redact(fs.unstrip_protocol(p)), uri), _size(i), fs, p, uri)
            for p, i in sorted(found.items()) if i.get("type") == "file"]


def _hidden(path: str, root: str) -> bool:
    return any(part.startswith((".", "_")) for part in PurePosixPath(path).relative_to(root).parts)


def _size(info: dict[str, Any]) -> int | None:
    size = info.get("size")
    return int(size) if size is not None else None


def download(f: RemoteFile, dest: Path) -> str:
    """Stream ``f`` into ``dest`` (which must not exist) in chunks; its sha256. The byte count must equal the
    remote size, else the file changed while it was being copied."""
    digest = hashlib.sha256()
    copied = 0
    with open(dest, "xb") as out:
        with client_errors(f.given, f.uri):
            expected = f.size if f.size is not None else int(f.fs.size(f.path))
            src = f.fs.open(f.path, "rb")
        with src:
            while True:
                with client_errors(f.given, f.uri):
                    chunk = src.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                copied += len(chunk)
    if copied != expected:
        raise InputError(f"{f.uri}: changed while it was being copied; try again")
    return digest.hexdigest()
