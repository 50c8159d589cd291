"""Every error relake raises on purpose.

    RelakeError                 root; the CLI prints ``Error: <message>`` and exits 1
    ├── InvalidNameError        a version/blocklist name that could escape or glob
    ├── InvalidPathError        a user path with glob characters, missing, or out of place
    ├── VersionExistsError      create-only publish lost (name already taken)
    ├── NotFoundError           a version, blocklist or file that does not exist
    ├── InputError              unreadable/corrupt parquet, missing column, schema drift
    ├── BlocklistError          malformed blocklist lines
    ├── SpecError               an invalid release spec
    ├── AuditError              an audit query returned rows; nothing was published
    ├── IntegrityError          verify found differences (carries the list)
    ├── CrowdError              the public manifest would single out sensitive removals
    ├── QueryError              a queries/ file is malformed or called with wrong params
    └── ResourceError           out of memory / disk while running a query
"""

from __future__ import annotations


class RelakeError(Exception):
    """Root of every handled relake error. ``str(err)`` is one line meant for users."""


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
    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class CrowdError(RelakeError):
    pass


class QueryError(RelakeError):
    pass


class ResourceError(RelakeError):
    pass
