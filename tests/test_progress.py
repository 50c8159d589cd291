"""Progress bars show a total and the time left where the total is known (shards, rows), never `0/?` (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from helpers import Cli, ok
from relake import console


def test_a_known_total_shows_done_of_total_and_the_time_left() -> None:
    known = console.progress_columns(3)
    assert any(isinstance(c, MofNCompleteColumn) for c in known)
    assert any(isinstance(c, TimeRemainingColumn) for c in known)
    unknown = console.progress_columns(None)
    assert not any(isinstance(c, MofNCompleteColumn | TimeRemainingColumn) for c in unknown)
    bar = Progress(*unknown)
    task = bar.add_task("x", total=None)
    bar.advance(task, 2)
    shown = " ".join(str(c.render(bar.tasks[0])) for c in unknown[1:3])
    assert "?" not in shown and "2 done" in shown


def test_build_ingest_and_verify_give_their_totals(cli: Cli, src: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    totals: dict[str, int | None] = {}
    real = console.progress

    @contextmanager
    def recording(description: str, total: int | None) -> Iterator[Any]:
        totals[description] = total
        with real(description, total) as advance:
            yield advance

    monkeypatch.setattr(console, "progress", recording)
    ok(cli("ingest", "orig", *src))
    ok(cli("build", "v1", "--base", "orig", "--where", "SAMPLE_ID = 1"))
    ok(cli("verify", "v1"))
    assert totals == {"ingest": 3, "build": 3, "verify": 3}
    ok(cli("verify"))
    assert totals["verify"] == 6
