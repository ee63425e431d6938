"""Where the CLI prints: rich consoles, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

# Piped into a log or CI, rich would squeeze tables into 80 columns and cut run ids and
# digests short; there a wide page reads better (COLUMNS still wins when set).
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(highlight=False, width=_PIPE_WIDTH)
err = Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout: nothing else may be printed there with --json."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def error(message: str) -> None:
    # escape: messages name TOML tables like [tool.envbuild], which rich would eat as markup
    err.print(f"[bold red]envbuild: error:[/] {escape(message)}", soft_wrap=True, markup=True)


def info(message: str, *, markup: bool = True) -> None:
    """A progress or status line on stderr; markup=False for text that may hold [brackets]."""
    err.print(message, soft_wrap=True, markup=markup)
