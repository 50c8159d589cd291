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

from enum import IntEnum
from typing import ClassVar


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
