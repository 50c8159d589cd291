"""Terminal output: results on stdout, everything else on stderr. The only module besides cli.py that
imports rich. Every string that came from data goes through ``literal`` first, so rich markup, ANSI
escapes and newlines inside URLs and captions are shown literally, never interpreted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

out = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def literal(value: object) -> Text:
    """Data as inert text: control characters shown as escapes, no markup."""
    s = str(value)
    return Text(_CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s))


def info(message: str) -> None:
    err.print(literal(message))


def warn(message: str) -> None:
    err.print(Text("Warning: ", style="bold yellow") + literal(message))


def error(message: str) -> None:
    err.print(Text("Error: ", style="bold red") + literal(message.splitlines()[0] if message else ""))


def step(message: str) -> None:
    err.print(Text("• ", style="cyan") + literal(message))


def print_json(data: Any) -> None:
    out.print(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False, default=str), markup=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], *, stderr: bool = False) -> None:
    t = Table(title=title, title_justify="left", show_edge=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(literal(v) for v in r))
    (err if stderr else out).print(t)


TABLE_COLUMNS = 5  # rows of more columns are shown one at a time (rows())


def rows(title: str, columns: Sequence[str], values: Sequence[Sequence[object]], label: str = "row") -> None:
    """Data rows on stdout: a table when they have few columns, else one block per row, a column a line (as psql's
    ``\\x``), so wide rows (LAION has a dozen columns) stay readable."""
    if len(columns) <= TABLE_COLUMNS:
        table(title, columns, values)
        return
    if title:
        out.print(literal(title))
    for i, r in enumerate(values, 1):
        kv(f"{label} {i}", list(zip(columns, r, strict=True)))


def kv(title: str, items: Sequence[tuple[str, object]], *, stderr: bool = False) -> None:
    t = Table(title=title, title_justify="left", show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for k, v in items:
        t.add_row(k, literal(v))
    (err if stderr else out).print(t)


def progress_columns(total: int | None) -> tuple[ProgressColumn, ...]:
    """A known total (shards, rows): a bar, done of total and the time left; an unknown one: a spinner, how many
    are done and the time so far (never ``0/?``)."""
    if total is None:
        return (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,.0f} done"),
                TimeElapsedColumn())
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn())


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A progress bar on stderr (when it is a terminal); yields ``advance(n)``. Give the ``total`` whenever it is
    known (shards, rows) so the bar shows it and the time left."""
    bar = Progress(*progress_columns(total), console=err, transient=True, disable=not err.is_terminal)
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
