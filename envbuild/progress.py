"""Progress for slow steps, on stderr: a rich spinner per step on a terminal, plain lines in logs."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

Report = Callable[[str], None]


@contextmanager
def steps(enabled: bool = True) -> Iterator[tuple[Report, Report]]:
    """Yield (step, detail): step("...") starts a step (ending the one before), detail("...")
    shows the latest line of output within it."""
    from envbuild.output import err

    if not enabled:
        yield (lambda s: None), (lambda s: None)
        return
    if not err.is_terminal:  # CI logs: one line per step, no spinner redraws
        yield (lambda s: err.print(f"… {s}", markup=False, highlight=False, soft_wrap=True)), (lambda s: None)
        return

    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"),
                        TimeElapsedColumn(), TextColumn("[dim]{task.fields[detail]}"), console=err)
    current: list = []

    def finish() -> None:
        if current:
            progress.update(current[-1], total=1, completed=1, detail="")

    def step(text: str) -> None:
        finish()
        current.append(progress.add_task(escape(text), total=None, detail=""))

    def detail(text: str) -> None:
        if current:
            progress.update(current[-1], detail=escape(text[:70]))

    with progress:
        yield step, detail
        finish()
