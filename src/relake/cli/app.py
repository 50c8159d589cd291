"""The typer app, global options and the error decorator shared by every command module."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
import typer.core
import typer.exceptions

from relake import __version__, console
from relake.errors import ExitCode, RelakeError
from relake.lake import Lake

# the groups of ``relake --help``, in the README's order (each command names its group: rich_help_panel=...)
START, MAINTAIN, LOOK, RELEASE, COPIES, HOUSEKEEPING = (
    "Start", "Build versions", "Look at versions", "Release", "Downstream copies", "Housekeeping")
PANELS = (START, MAINTAIN, LOOK, RELEASE, COPIES, HOUSEKEEPING)


class LazyHelp(str):
    """A parameter's help text that ``make`` writes from a registry when the text is first read (``--help``), not
    each time typer builds the commands, which it does at every start: the registry's modules then load only for
    ``--help`` or the command that needs them. Give it as ``help=LazyHelp(make)``; :class:`Group` reads it."""

    make: Callable[[], str]

    def __new__(cls, make: Callable[[], str]) -> LazyHelp:
        self = super().__new__(cls)
        self.make = make
        return self


class _LazyHelp:
    """``help`` of a parameter, a :class:`LazyHelp` written out the first time it is read."""

    __slots__ = ()  # a mixin, last in the bases: _plain_params can then give typer's parameters the subclasses

    @property
    def help(self) -> str | None:
        text: str | None = self.__dict__.get("help")
        if isinstance(text, LazyHelp):
            text = self.__dict__["help"] = text.make()
        return text

    @help.setter
    def help(self, text: str | None) -> None:
        self.__dict__["help"] = text


class _Argument(typer.core.TyperArgument, _LazyHelp):
    """An argument shown by its metavar alone (``NAME``), not by its Python type (``<str>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(typer.core.TyperOption, _LazyHelp):
    """An option shown with its metavar (``--url-col COL``), never its Python type (``<str>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        desc = self.type_descriptor
        if desc.is_choice:
            return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
        return (self.name or "value").upper()


def _plain_params(cmd: Any) -> None:
    """Give every parameter of ``cmd`` (and of its subcommands) a metavar instead of a type name in ``--help``, and
    a help text written when it is read (:class:`LazyHelp`)."""
    for param in cmd.params:
        if isinstance(param, typer.core.TyperArgument):
            param.__class__ = _Argument
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
        elif isinstance(param, typer.core.TyperOption):
            param.__class__ = _Option
    for sub in getattr(cmd, "commands", {}).values():
        _plain_params(sub)


class Group(typer.core.TyperGroup):
    """The command groups of ``relake``: ``--help`` lists commands under the README's headings (``PANELS``), shows
    metavars rather than Python type names, and writes a :class:`LazyHelp` only when it is read."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _plain_params(self)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands = [(n, c) for n in self.list_commands(ctx) if (c := self.get_command(ctx, n)) and not c.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(n) for n, _ in commands)
        panels = list(PANELS) + sorted({_panel(c) for _, c in commands} - set(PANELS))
        for panel in panels:
            rows = [(n, c.get_short_help_str(limit)) for n, c in commands if _panel(c) == panel]
            if rows:
                with formatter.section(panel):
                    formatter.write_dl(rows)


def _panel(cmd: Any) -> str:
    return getattr(cmd, "rich_help_panel", None) or "Commands"


app = typer.Typer(
    cls=Group,
    name="relake",
    help="Version and clean web-scale image-text link datasets (LAION-class) with DuckDB.\n\n"
    "Exit codes (as diff, cmp and grep): 0 success or nothing found; 1 found (differences, affected rows, a "
    "listed URL, a failed verification); 2 trouble (any error, bad usage); 130 interrupted; 143 terminated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    lake: Lake | None = None
    debug: bool = False
    terminated: bool = False  # SIGTERM arrived: whatever error it caused (an interrupted query, a UDF's), exit 143


STATE = _State()


class Terminated(BaseException):
    """SIGTERM, turned into an exception so staging folders are cleaned up on the way out."""


# errors of the machine rather than of relake: one line each, exit 2 (staging folders are removed on the way out)
_ENVIRONMENT = {
    errno.ENOSPC: "no space left on the device (free space there, or write elsewhere)",
    errno.EDQUOT: "disk quota exceeded (free space, or write elsewhere)",
    errno.EROFS: "read-only file system (write elsewhere)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def handled(fn: F) -> F:
    """Turn a RelakeError into ``Error: …`` on stderr and its exit code (2, or 1 for a failed verification); any
    OSError of the machine (a full disk, a quota, a read-only file system, a permission) into one ``Error:`` line
    saying so, exit 2; any other exception into one ``Error:`` line naming its type (its message may hold row values)
    and exit 2, since exit 1 means "found". After SIGTERM, whatever error it caused exits 143. ``--debug`` re-raises
    errors. Typer's own exits and usage errors pass through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise
        except RelakeError as exc:
            _exit_if_terminated()
            if STATE.debug:
                raise
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _exit_if_terminated()
            console.error("interrupted; nothing was published")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Terminated:
            _exit_if_terminated(force=True)
        except Exception as exc:
            _exit_if_terminated()
            if STATE.debug:
                raise
            environment = _ENVIRONMENT.get(exc.errno) if isinstance(exc, OSError) and exc.errno else None
            if isinstance(exc, OSError) and environment is not None:  # the machine's trouble, not relake's bug
                where = f"{exc.filename}: " if exc.filename else ""
                console.error(f"{where}{environment}; nothing was published")
                raise typer.Exit(ExitCode.TROUBLE) from None
            console.error(f"unexpected {type(exc).__name__} (a bug in relake; its message is withheld as it may "
                          "hold row values): rerun with --debug for the traceback, and please report it")
            raise typer.Exit(ExitCode.TROUBLE) from None

    return wrapper  # type: ignore[return-value]


def on_sigterm() -> None:
    """Note that SIGTERM arrived and raise :class:`Terminated` (the CLI's SIGTERM handler). A signal during a DuckDB
    query or inside a UDF may reach :func:`handled` as another error (``Query interrupted``, a failed rule); the
    note makes it exit 143 all the same."""
    STATE.terminated = True
    raise Terminated()


def _exit_if_terminated(force: bool = False) -> None:
    if STATE.terminated or force:
        console.error("terminated; nothing was published")
        raise typer.Exit(ExitCode.TERMINATED) from None


def lake() -> Lake:
    return STATE.lake or Lake.at()


def _print_version(value: bool) -> None:
    if value:
        console.out.print(f"relake {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def main_options(
    lake_path: Annotated[
        str | None, typer.Option("--lake", metavar="PATH", help="Lake folder (default: $RELAKE_LAKE or ./lake).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    STATE.debug = debug
    STATE.terminated = False
    STATE.lake = Lake.at(lake_path) if lake_path is not None else None


