"""The command line: a typer app whose commands parse, call one library function and render.

``relake.cli`` (this package) is the only place that imports typer; ``relake.console`` the only other
rich importer.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from relake.cli import build, copies, core, diff, explore, publish, report  # noqa: F401  (registers commands)
from relake.cli.app import STATE, app, on_sigterm
from relake.errors import ExitCode

__all__ = ["app", "main"]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    on_sigterm()


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitCode.TERMINATED if STATE.terminated else ExitCode.INTERRUPTED)
