"""All terminal output: rich live progress on a TTY, plain timestamped lines otherwise (CI).

The library reports events (deployer.pipeline.Events); only this module prints.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from deployer.inventory import Resource
from deployer.journal import Entry
from deployer.preflight import Check
from deployer.steps.base import Change

STATUS_SCHEMA_VERSION = 1
PLAIN_REPEAT_SECONDS = 30.0


class Renderer:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.plain = not self.console.is_terminal
        self._started: dict[str, float] = {}
        self._notes: dict[str, str] = {}
        self._printed: dict[str, tuple[str, float]] = {}
        self._live: Live | None = None
        self._lock = threading.Lock()

    # -- lines ------------------------------------------------------------------------------

    def line(self, text: str, style: str = "") -> None:
        if self.plain:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.console.print(f"{stamp} {text}", markup=False, highlight=False)
        else:
            self.console.print(escape(text), style=style or None)

    def header(self, account: str, region: str, app: str, env: str) -> None:
        self.line(f"account {account} · region {region} · {app}/{env}", "bold")

    def error(
        self,
        message: str,
        hint: str,
        details: list[str] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.line(f"error: {message}", "bold red")
        for detail in details or []:
            self.line(f"  - {detail}", "red")
        if request_id:
            self.line(f"  AWS request id: {request_id}", "dim")
        if hint:
            self.line(f"hint: {hint}", "yellow")

    # -- live progress (pipeline.Events) ----------------------------------------------------

    @contextmanager
    def progress(self) -> Iterator[Renderer]:
        if self.plain:
            yield self
            return
        with Live(
            self._table(),
            console=self.console,
            refresh_per_second=4,
            get_renderable=self._table,
            transient=True,
        ) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        with self._lock:
            for step, started in self._started.items():
                table.add_row(
                    f"[cyan]⠿ {escape(step)}[/]",
                    f"{time.monotonic() - started:5.0f}s",
                    escape(self._notes.get(step, "")),
                )
        return table

    def step_started(self, step: str) -> None:
        with self._lock:
            self._started[step] = time.monotonic()
        if self.plain:
            self.line(f"{step}: started")

    def step_note(self, step: str, message: str) -> None:
        if step not in self._started:  # a note outside any step (the lock): just a line
            self.line(f"{step}: {message}", "yellow")
            return
        with self._lock:
            self._notes[step] = message
            # In a log, a poll that says the same thing again is noise: repeat it at most
            # every PLAIN_REPEAT_SECONDS (the elapsed time inside parentheses is ignored).
            gist = re.sub(r"\(\d+s\)", "", message)
            last_gist, last_time = self._printed.get(step, ("", 0.0))
            fresh = gist != last_gist or time.monotonic() - last_time >= PLAIN_REPEAT_SECONDS
            if fresh:
                self._printed[step] = (gist, time.monotonic())
        if self.plain and fresh:
            self.line(f"{step}: {message}")

    def _finish(self, step: str) -> None:
        with self._lock:
            self._started.pop(step, None)
            self._notes.pop(step, None)

    def step_finished(self, step: str, seconds: float) -> None:
        self._finish(step)
        self.line(
            f"✓ {step} ({seconds:.1f}s)" if not self.plain else f"{step}: done in {seconds:.1f}s",
            "green",
        )

    def step_failed(self, step: str, seconds: float, message: str) -> None:
        self._finish(step)
        self.line(f"✗ {step} failed after {seconds:.1f}s: {message}", "red")

    def undoing(self, entry: Entry) -> None:
        self.line(f"rollback: undo {entry.description}", "yellow")

    # -- reports ----------------------------------------------------------------------------

    def changes(self, changes: list[Change]) -> None:
        if not changes:
            self.line("no changes: the environment matches deploy.toml", "green")
            return
        symbols = {"create": "+", "update": "~", "delete": "-"}
        for change in changes:
            detail = f" ({change.detail})" if change.detail else ""
            self.line(
                f"{symbols.get(change.action, '?')} {change.component}: {change.action} "
                f"{change.type} {change.name}{detail}"
            )
        counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "delete")}
        self.line(
            f"{counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete"
        )

    def resources(self, resources: list[Resource], title: str = "owned resources") -> None:
        if not resources:
            self.line(f"{title}: none")
            return
        if self.plain:
            # The title says what the rows are: without it a CI log of `down` lists what it
            # just deleted with its last state ("available"), as if it were still there.
            self.line(f"{title} ({len(resources)}):")
            for r in resources:
                self.line(f"{r.component}\t{r.type}\t{r.id}\t{r.state}")
            return
        table = Table(title=title)
        for column in ("component", "type", "id", "state"):
            table.add_column(column)
        for r in resources:
            table.add_row(r.component, r.type, r.id, r.state)
        self.console.print(table)

    def status_json(self, meta: dict[str, Any], resources: list[Resource]) -> None:
        document = {
            "schema": STATUS_SCHEMA_VERSION,
            **meta,
            "resources": [vars(r) for r in resources],
        }
        self.console.print_json(json.dumps(document), highlight=False)

    def checks(self, checks: list[Check]) -> None:
        if self.plain:
            for c in checks:
                fix = f" -> {c.fix}" if c.fix and not c.ok else ""
                self.line(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}{fix}")
            return
        table = Table(title="pre-flight checks")
        for column in ("", "check", "result", "fix"):
            table.add_column(column)
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            table.add_row(mark, escape(c.name), escape(c.detail), escape("" if c.ok else c.fix))
        self.console.print(table)

    def calls(self, total: int, mutating: int) -> None:
        self.line(f"AWS API calls: {total} ({mutating} mutating)", "dim")
