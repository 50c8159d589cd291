"""Every error relake raises on purpose, and the exit codes the CLI gives.

Exit codes follow ``diff``, ``cmp`` and ``grep`` (:class:`ExitCode`): 0 success or nothing found; 1 found
(differences, affected rows, a listed URL, a failed verification); 2 trouble (any error, bad usage). Each error
class carries its code in ``exit_code``: 2 for all but :class:`IntegrityError` (verify found a difference: 1).

    RelakeError                 root; the CLI prints ``Error: <message>`` and exits with ``exit_code`` (2)
    ├── InvalidNameError        a version/blocklist name that could escape or glob
    ├── InvalidPathError        a user path with glob characters, missing, or out of place
    ├── VersionExistsError      create-only publish lost (name already taken)
    ├── NotFoundError           a version, blocklist or file that does not exist
    ├── InputError              unreadable/corrupt parquet, missing column, schema drift
    ├── BlocklistError          malformed blocklist lines
    ├── SpecError               an invalid release spec
    ├── AuditError              an audit query returned rows; nothing was published
    ├── IntegrityError          verify found differences (carries the list); exit code 1
    ├── CrowdError              the public manifest would single out sensitive removals
    ├── QueryError              a queries/ file is malformed or called with wrong params
    └── ResourceError           out of memory / disk while running a query
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import ClassVar

import duckdb


class ExitCode(IntEnum):
    """What a relake command's exit status means (as ``diff``, ``cmp`` and ``grep``)."""

    OK = 0  # success; nothing found
    FOUND = 1  # differences, affected rows, a listed URL, a failed verification
    TROUBLE = 2  # any error, bad usage
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class RelakeError(Exception):
    """Root of every handled relake error. ``str(err)`` is one line meant for users."""

    exit_code: ClassVar[ExitCode] = ExitCode.TROUBLE


class InvalidNameError(RelakeError):
    def __init__(self, what: str, name: str, why: str) -> None:
        self.what, self.name, self.why = what, name, why
        super().__init__(f"invalid {what} name {name!r}: {why}")


class InvalidPathError(RelakeError):
    pass


class VersionExistsError(RelakeError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"version {name!r} already exists; versions are immutable, choose another name")


class NotFoundError(RelakeError):
    pass


class InputError(RelakeError):
    pass


class BlocklistError(RelakeError):
    pass


class SpecError(RelakeError):
    pass


class AuditError(RelakeError):
    pass


class IntegrityError(RelakeError):
    exit_code = ExitCode.FOUND

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class CrowdError(RelakeError):
    pass


class QueryError(RelakeError):
    pass


class ResourceError(RelakeError):
    pass


class EngineError(RelakeError):
    """The engine cannot run the work: Ray is missing, its cluster cannot be started or joined, a task died, or an
    option does not fit the engine."""


# --- DuckDB's errors, translated in one place ---------------------------------------------------------------------
#
# Every ``except duckdb...`` of relake is here (a test walks the package for others). A site wraps its DuckDB work in
# ``duckdb_errors(what)``; what the user reads is ``what`` and the first line of DuckDB's message, with row values
# withheld (a value may be a removed URL or caption, which must never be printed):
#
#     out of memory, or a full disk             ResourceError: raise --memory-limit, or free disk space
#     a query stopped by a signal               KeyboardInterrupt: the CLI exits 130 ("interrupted"), not as bad data
#     any other I/O error                       InputError (DuckDB's message names the file)
#     anything else                             the site's class: InputError, or SpecError for a release spec's rules

# DuckDB's planning errors quote the SQL's own code (column and function names), never row values.
PLANNING_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException,
)
# Errors about one value: every quoted text, number and ``: …`` tail in their message may be a row's value.
_VALUE_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.ConstraintException,
)
_WITHHELD = "(withheld)"
# ``value 'x'``, ``string "x"``, ``Input: "x"``: a quoted value, whatever the error
_ROW_VALUE = re.compile(r"""\b(value|string|input)(:?)\s+(["'])(?:(?!\3).)*\3""", re.IGNORECASE)
# ``value 12345678901``, ``value -3.5e+300``, ``value inf``: an unquoted number, whatever the error
_NUMBER_VALUE = re.compile(r"\b(value)\s+[-+]?(?:\d[\d.]*(?:e[-+]?\d+)?|\.\d+|inf(?:inity)?\b|nan\b)", re.IGNORECASE)
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z ]* Error: )?(.*)$")  # DuckDB's "Conversion Error: " and the rest
_QUOTED = re.compile(r"""(["'])(?:(?!\1).)*\1""")
# a type's parameters (DECIMAL(18,3)) are kept; any other number is withheld
_NUMBER = re.compile(r"(\b[A-Z][A-Z0-9_]*\([\d,\s]+\))|(?<![\w.])[-+]?\d[\d.]*(?:e[-+]?\d+)?(?![\w])")
_NO_SPACE = "No space left"  # DuckDB's I/O error when a disk (the spill folder, the output) is full
_INTERRUPTED = "Query interrupted"  # the RuntimeError DuckDB raises when a signal stops a query


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, with the row values DuckDB puts in it withheld: quoted or numeric values
    (``value 'x'``, ``string "x"``, ``value 123``), and in a conversion, range or constraint error every quoted
    text, number and ``: …`` tail."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    line = _ROW_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)} {_WITHHELD}", line)
    line = _NUMBER_VALUE.sub(lambda m: f"{m.group(1)} {_WITHHELD}", line)
    if isinstance(exc, _VALUE_ERRORS):
        m = _PREFIX.match(line)
        prefix, rest = (m.group(1) or "", m.group(2)) if m else ("", line)
        colon = rest.find(": ")
        if colon >= 0:
            rest = f"{rest[:colon]}: {_WITHHELD}"
        rest = _QUOTED.sub(_WITHHELD, rest)
        rest = _NUMBER.sub(lambda m: m.group(1) or _WITHHELD, rest)
        line = prefix + rest
    return line


def withhold_quoted(message: str) -> str:
    """``message`` up to its first quote: for errors of SQL a user wrote over rows, where any quoted text may be a
    value relake cannot tell from code."""
    cut = min((i for i in (message.find("'"), message.find('"')) if i >= 0), default=-1)
    return message if cut < 0 else message[:cut].rstrip(" :") + " (value withheld)"


def is_interrupt(exc: BaseException) -> bool:
    """A query stopped by a signal (or ``interrupt()``), not by its data."""
    return isinstance(exc, duckdb.InterruptException) or (
        type(exc) is RuntimeError and str(exc).startswith(_INTERRUPTED))


def is_resource(exc: BaseException) -> bool:
    """DuckDB ran out of memory, or of disk (it reports a full spill folder as out of memory)."""
    return isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, duckdb.IOException) and _NO_SPACE in str(exc))


def from_duckdb(
    exc: BaseException,
    what: str = "",
    *,
    as_: type[RelakeError] = InputError,
    then: str = "",
    spill: str | os.PathLike[str] | None = None,
    strict: bool = False,
    planning: str | None = None,
) -> RelakeError | KeyboardInterrupt:
    """The error to raise (``from exc``) for a DuckDB error met while doing ``what``.

    The message is ``what (detail)``, or ``what detail`` when ``what`` ends with a colon, then ``then``; ``detail``
    is :func:`first_line`. ``spill`` names the spill folder in the out-of-memory advice. ``strict`` also cuts the
    detail at its first quote (SQL a user wrote, over rows); ``planning``, when given, replaces ``what`` for planning
    errors (binder, catalog, parser), which quote the SQL's own code and are not cut."""
    if is_interrupt(exc):
        return KeyboardInterrupt()
    detail = first_line(exc)
    if is_resource(exc):
        lead = f"{what.rstrip(' :')}: " if what else ""
        where = spill or "the lake's tmp/ folder (.tmp/ in the current folder when there is no lake)"
        return ResourceError(f"{lead}DuckDB ran out of memory or disk space ({detail}); raise --memory-limit, or free "
                             f"disk space in {where} (DuckDB reports a full spill folder as out of memory){then}")
    if planning is not None and isinstance(exc, PLANNING_ERRORS):
        what = planning
    elif strict:
        detail = withhold_quoted(detail)
    cls = InputError if isinstance(exc, duckdb.IOException) else as_
    if not what:
        return cls(detail + then)
    return cls(f"{what} {detail}{then}" if what.endswith(":") else f"{what} ({detail}){then}")


@contextmanager
def duckdb_errors(
    what: str,
    *,
    as_: type[RelakeError] = InputError,
    then: str = "",
    spill: str | os.PathLike[str] | None = None,
    strict: bool = False,
    planning: str | None = None,
    check: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Raise :func:`from_duckdb`'s error for any DuckDB error in the block. ``check`` runs first (not on an
    interrupt) and may raise a likelier cause (build: a base shard changed on disk). Other errors pass unchanged."""
    try:
        yield
    except (duckdb.Error, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not is_interrupt(exc):
            raise
        if check is not None and not is_interrupt(exc):
            check()
        raise from_duckdb(exc, what, as_=as_, then=then, spill=spill, strict=strict, planning=planning) from exc


@contextmanager
def duckdb_resources(spill: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Translate only running out of memory or disk (:class:`ResourceError`) and interrupts (``KeyboardInterrupt``),
    for a whole connection's life: any other DuckDB error reaching this far was not expected, and stays loud."""
    try:
        yield
    except (duckdb.Error, RuntimeError) as exc:
        if not (is_resource(exc) or is_interrupt(exc)):
            raise
        raise from_duckdb(exc, spill=spill) from exc
