"""Lake paths, name validation, staging folders and the atomic, create-only publish of versions.

A version is written under ``staging/<name>.<random>/`` (holding an exclusive ``flock`` on a lock
file for as long as its writer lives), fsynced, then made visible by one ``rename`` of the whole
folder to ``versions/<name>``. Renaming a folder onto an existing non-empty folder fails on POSIX,
so two writers racing for one name get exactly one winner and nothing is ever overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relake.errors import (
    InputError,
    InvalidNameError,
    InvalidPathError,
    NotFoundError,
    RelakeError,
    VersionExistsError,
)
from relake.jsonfile import JSON_ERRORS, read_json_text
from relake.record import Version, VersionEntry, VersionListing
from relake.report import Report

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 100
GLOB_CHARS = frozenset("*?[]{}")
VERSION_FILE = "version.json"
# A release is staged beside its output folder (outside the lake) as ``.OUT.partial-<hex>``; its publisher notes
# that path in ``staging/_publish.<hex>/partial`` (a label no version name can have) under its staging lock.
PUBLISH_LABEL = "_publish"
PARTIAL_FILE = "partial"
_PARTIAL_NAME = re.compile(r"\..+\.partial-[0-9a-f]{12}", re.DOTALL)


def validate_name(name: str, what: str = "version") -> str:
    """Reject anything that could escape a folder, glob, or confuse a terminal, before any I/O."""
    if not name:
        raise InvalidNameError(what, name, "it is empty")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise InvalidNameError(what, name[:40] + "…", f"it is longer than {MAX_NAME} bytes")
    if ".." in name:
        raise InvalidNameError(what, name, "'..' is not allowed")
    if not _NAME.fullmatch(name):
        raise InvalidNameError(
            what, name, "use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
        )
    return name


REVISION_SEP = "@"  # a blocklist's revision: NAME@2 (NAME alone: its latest)
_REVISION = re.compile(r"[1-9][0-9]{0,8}")


def split_revision(ref: str, what: str = "blocklist") -> tuple[str, int | None]:
    """``NAME`` or ``NAME@REV`` (REV a whole number from 1): the valid name and the revision (None: the latest)."""
    name, sep, rev = ref.partition(REVISION_SEP)
    validate_name(name, what)
    if not sep:
        return name, None
    if not _REVISION.fullmatch(rev):
        raise InvalidNameError(what, ref, f"a revision is {name}{REVISION_SEP}N with N a whole number from 1")
    return name, int(rev)


def checkpoint(point: str) -> None:
    """Test-only fault hooks: ``RELAKE_TEST_KILL_AT=point`` SIGKILLs this process here;
    ``RELAKE_TEST_HOLD_AT=point:FILE`` touches ``FILE.<pid>.waiting``, then waits here until FILE exists (to
    force interleavings)."""
    if os.environ.get("RELAKE_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    hold = os.environ.get("RELAKE_TEST_HOLD_AT", "")
    if hold.startswith(point + ":"):
        release = Path(hold[len(point) + 1 :])
        with contextlib.suppress(OSError):  # tells a test this process has reached the point
            Path(f"{release}.{os.getpid()}.waiting").touch()
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def make_private(*paths: Path) -> None:
    """Owner-only, whatever the umask: files 0600, folders 0700 (what names removed rows: blocklists, removed.parquet,
    a build's record with its spec)."""
    for path in paths:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Staging:
    """A private work folder inside the lake, locked by its living writer."""

    path: Path
    lock_fd: int


@dataclass(frozen=True)
class Leftovers(Report):
    """What ``relake gc`` removed (or, with ``dry_run``, would remove)."""

    root: Path
    removed: list[Path]
    dry_run: bool = False


@dataclass(frozen=True)
class Lake:
    root: Path

    @staticmethod
    def at(path: str | os.PathLike[str] | None = None) -> Lake:
        raw = path if path is not None else os.environ.get("RELAKE_LAKE") or "lake"
        return Lake(Path(raw).expanduser().absolute())

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def blocklists_dir(self) -> Path:
        return self.root / "blocklists"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def version_dir(self, name: str) -> Path:
        return self.versions_dir / validate_name(name)

    def has_version(self, name: str) -> bool:
        return (self.version_dir(name) / VERSION_FILE).is_file()

    def require_absent(self, name: str) -> None:
        if self.version_dir(name).exists():
            raise VersionExistsError(name)

    def load_version(self, name: str) -> Version:
        vdir = self.version_dir(name)
        mpath = vdir / VERSION_FILE
        if not vdir.is_dir():
            known = ", ".join(self.version_names()) or "none yet"
            raise NotFoundError(f"no version named {name!r} in lake {self.root} (versions: {known})")
        if not mpath.is_file():
            raise NotFoundError(f"{mpath}: version record (version.json) is missing; the version folder is damaged")
        try:
            text = read_json_text(mpath)
        except JSON_ERRORS as exc:
            raise NotFoundError(f"{mpath}: cannot read the version record ({exc})") from exc
        version = _parsed(text, str(mpath))
        if version.name != name:
            raise NotFoundError(f"{mpath}: manifest names version {version.name!r}, not {name!r}")
        return version

    def list_versions(self) -> VersionListing:
        """Every version's entry, by name; one damaged version is skipped (with why), not hiding the others."""
        entries: list[VersionEntry] = []
        skipped: list[tuple[str, str]] = []
        for n in self.version_names():
            try:
                entries.append(VersionEntry.of(self.load_version(n)))
            except RelakeError as exc:
                skipped.append((n, str(exc)))
        return VersionListing(self.root, entries, skipped)

    def version_names(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))

    @contextmanager
    def staging(self, label: str) -> Iterator[Staging]:
        """A locked staging folder, removed on any exit unless its content was published."""
        validate_name(label, "staging")
        with locked_dir(self.staging_dir, label) as staging:
            yield staging

    @contextmanager
    def spill_dir(self) -> Iterator[Path]:
        """A locked folder under ``tmp/`` for DuckDB to spill into; removed on exit."""
        with locked_dir(self.tmp_dir, "duckdb") as d:
            yield d.path

    def publish(self, staging: Staging, name: str) -> Path:
        """Make a staged version visible with one create-only rename."""
        return publish_dir(staging, self.version_dir(name), lambda: VersionExistsError(name))

    def gc_report(self, dry_run: bool = False) -> Leftovers:
        """:meth:`gc` as a report."""
        return Leftovers(self.root, self.gc(dry_run), dry_run)

    def gc(self, dry_run: bool = False) -> list[Path]:
        """Remove leftovers of crashed runs: staging and spill folders whose writer is gone (its lock can
        be taken), and the release folders a killed publish was staging beside its output
        (``sweep_dead_publishes``). Returns what was (or would be) removed. ``versions/`` and ``blocklists/`` are never
        touched."""
        removed = sweep_dead_publishes(self.staging_dir, dry_run)  # first: their notes live in staging/
        for parent in (self.staging_dir, self.tmp_dir):
            removed.extend(_sweep(parent, dry_run))
        return removed


def publish_dir(staging: Staging, target: Path, exists_error: Callable[[], Exception]) -> Path:
    """fsync a staged folder, then rename it to ``target``; fails (never overwrites) when target exists."""
    fsync_tree(staging.path)
    checkpoint("publish:before-rename")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging.path, target)
    except OSError as exc:
        if target.exists():
            raise exists_error() from exc
        raise
    fsync_dir(target.parent)
    checkpoint("publish:after-rename")
    return target


_LOCK = ".lock"
_NEW_LOCK = ".lock.new"  # a lock file being created: locked first, then renamed into place
_NEW_LOCK_AGE = 600.0  # seconds after which gc removes a NAME.lock.new a crash left (never one being created)


@contextmanager
def locked_dir(parent: Path, label: str) -> Iterator[Staging]:
    parent.mkdir(parents=True, exist_ok=True)
    path, fd = _new_locked(parent, label)
    lock = parent / (path.name + _LOCK)
    try:
        path.mkdir()
        yield Staging(path, fd)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)


def _new_locked(parent: Path, label: str) -> tuple[Path, int]:
    """A fresh folder name under ``parent`` and the fd of its lock file, locked before the file gets its name: the
    file is created as ``NAME.lock.new``, locked, then renamed to ``NAME.lock``, so gc never meets an unlocked
    ``NAME.lock`` of a living writer. gc leaves young ``.lock.new`` files alone; should one be removed anyway, the
    rename fails and we start over."""
    for _ in range(100):
        path = parent / f"{label}.{secrets.token_hex(6)}"
        new = parent / (path.name + _NEW_LOCK)
        fd = os.open(new, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(new, parent / (path.name + _LOCK))
        except FileNotFoundError:  # gc removed it before we locked it
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            new.unlink(missing_ok=True)
            raise
        return path, fd
    raise RuntimeError(f"{parent}: could not create a lock file (removed 100 times over)")


def _sweep(parent: Path, dry_run: bool) -> list[Path]:
    """Entries of ``parent`` not protected by a held lock."""
    if not parent.is_dir():
        return []
    removed: list[Path] = []
    for entry in sorted(parent.iterdir()):
        if entry.name.endswith((_LOCK, _NEW_LOCK)):
            continue
        lock = parent / (entry.name + _LOCK)
        if dry_run and not lock.exists():
            removed.append(entry)
            continue
        if not _try_lock(lock, create=True, then=functools.partial(_remove, entry), dry_run=dry_run):
            continue
        removed.append(entry)
    for lock in sorted([*parent.glob("*" + _LOCK), *parent.glob("*" + _NEW_LOCK)]):
        new = lock.name.endswith(_NEW_LOCK)
        owner = lock.name[: -len(_NEW_LOCK if new else _LOCK)]
        if (parent / owner).exists() or not lock.exists() or (new and _younger_than(lock, _NEW_LOCK_AGE)):
            continue  # a lock being created is left to its writer (it is renamed or removed within microseconds)
        if _try_lock(lock, create=False, then=lambda: None, dry_run=dry_run):
            removed.append(lock)
    return removed


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except FileNotFoundError:
        return True


def _try_lock(lock: Path, *, create: bool, then: Callable[[], None], dry_run: bool) -> bool:
    """Take ``lock`` without waiting; if taken, run ``then`` and remove the lock file (neither on a dry run).
    False when a living writer holds it, or it vanished (its writer finished)."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR if create else os.O_RDWR, 0o600)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not dry_run:
            then()
            lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def sweep_dead_publishes(staging_dir: Path, dry_run: bool, out: Path | None = None) -> list[Path]:
    """The ``.OUT.partial-<hex>`` folders of publishers that died (a killed ``relake publish``): each noted in
    ``staging/_publish.<hex>/partial``, whose lock its publisher held while it lived. One whose lock is free is
    removed with its note (``out``: only those staged for this OUT). Returns what was (or would be) removed."""
    removed: list[Path] = []
    if not staging_dir.is_dir():
        return removed
    for note in sorted(staging_dir.glob(f"{PUBLISH_LABEL}.*")):
        pointer = note / PARTIAL_FILE
        if note.name.endswith(".lock") or not pointer.is_file():
            continue
        try:
            partial = Path(pointer.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if not partial.is_absolute() or not _PARTIAL_NAME.fullmatch(partial.name):
            continue  # not a note this relake wrote: nothing outside the lake is removed on its word
        if out is not None and (partial.parent != out.absolute().parent
                                or not partial.name.startswith(f".{out.name}.partial-")):
            continue
        lock = staging_dir / (note.name + ".lock")
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600) if not dry_run or lock.exists() else -1
        try:
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its publisher is alive
            if partial.exists() or partial.is_symlink():
                removed.append(partial)
            if not dry_run:
                _remove(partial)
                _remove(note)
                lock.unlink(missing_ok=True)
        finally:
            if fd >= 0:
                os.close(fd)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=_gone_is_fine)
    else:
        path.unlink(missing_ok=True)


def _gone_is_fine(function: Callable[..., object], path: str, exc_info: tuple[type, BaseException, object]) -> None:
    """A file its own writer removed meanwhile is no error."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def check_user_path(path: str) -> Path:
    """A path given by a user, as given: no NUL, no glob characters (DuckDB would expand them)."""
    if "\x00" in path:
        raise InvalidPathError(f"path {path!r} contains a NUL byte")
    if not path:
        raise InvalidPathError("empty path")
    return Path(path)


@contextmanager
def replacing(out: str | Path) -> Iterator[Path]:
    """A temp path beside the output file ``out`` (``--out``), renamed onto it when the block ends and removed if
    it fails: the file appears whole or not at all. Refuses a folder, or a folder that does not exist."""
    target = Path(out).absolute()
    if target.is_dir():
        raise InputError(f"--out {out}: is a folder")
    if not target.parent.is_dir():
        raise NotFoundError(f"--out {out}: folder {target.parent} does not exist")
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def has_glob_chars(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


@functools.lru_cache(maxsize=256)
def _parsed(text: str, where: str) -> Version:
    """A version record's text, parsed and type-checked once per process: a command loads the same few records
    many times (publish: ~30 loads, ~30 ms each at 30M rows for the 256 fingerprint buckets). Keyed by the text
    read each time, so a changed file is parsed anew; a ``Version`` is frozen and nothing edits its dicts."""
    return Version.from_json(text, where)
