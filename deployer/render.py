"""All terminal output: rich live progress on a TTY, plain timestamped lines otherwise (CI).

The library reports events (deployer.pipeline.Events); only this module prints. Two streams,
as gh and the AWS CLI do: stderr carries progress, warnings and errors; stdout carries only
the command's result (the URL, `plan`'s changes, `status`), so `$(nnote-deploy up)` and pipes
see nothing else.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # annotations only: an error in deploy.toml is rendered before boto3 loads
    from datetime import datetime

    from deployer.cost.report import CostChange, CostReport
    from deployer.inventory import Resource
    from deployer.journal import Entry
    from deployer.overview import EnvironmentRow
    from deployer.preflight import Check
    from deployer.rollout.failures import TaskFailure
    from deployer.rollout.releases import Release
    from deployer.rollout.timeline import Phase
    from deployer.steps.base import Change

PLAIN_REPEAT_SECONDS = 30.0


class Renderer:
    def __init__(self, console: Console | None = None, out: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = out or Console(highlight=False, soft_wrap=True, emoji=False)
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

    def result(self, text: str) -> None:
        """One line of the command's result on stdout: never timestamped, never styled. Into
        a pipe exactly as given (rich would turn tabs into spaces and `:ok:` into an emoji)."""
        if self.out.is_terminal:
            self.out.print(text, markup=False, highlight=False, soft_wrap=True, emoji=False)
        else:
            self.out.file.write(text + "\n")
            self.out.file.flush()

    def header(self, account: str | None, region: str, app: str, env: str) -> None:
        """Who and where: `account None` for what asks no account (`cost`)."""
        who = f"account {account} · " if account else ""
        self.line(f"{who}region {region} · {app}/{env}", "bold")

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

    def changes(self, changes: list[Change], *, result: bool = False) -> None:
        """The planned changes: `plan`'s result (stdout), or what `up` is about to do."""
        say = self.result if result else self.line
        if not changes:
            say("no changes: the environment matches deploy.toml")
            return
        for text in change_lines(changes):
            say(text)

    def resources(
        self, resources: list[Resource], title: str = "owned resources", *, to_stderr: bool = False
    ) -> None:
        """A list of resources, a result on stdout unless `to_stderr` (what `down` is about to
        delete). On a terminal a table, but only if every id fits whole: an id cut to "vpc-0…"
        cannot be pasted into the console, so a narrow terminal gets one line per resource."""
        console = self.console if to_stderr else self.out
        say = self.line if to_stderr else self.result
        if not resources:
            say(f"{title}: none")
            return
        rows = [(r.component, r.type, r.id, r.detail) for r in resources]
        if console.is_terminal and _table_fits(rows, console.width):
            table = Table(title=title)
            for column in ("component", "type", "id", "state"):
                table.add_column(column, no_wrap=True, overflow="fold")
            for row in rows:
                table.add_row(*(escape(cell) for cell in row))
            console.print(table)
            return
        # The title says what the rows are: without it a CI log of `down` lists what it just
        # deleted with its last state ("available"), as if it were still there.
        say(f"{title} ({len(resources)}):")
        for row in rows:
            say("\t".join(row))

    def status_json(self, document: dict[str, Any]) -> None:
        self.out.print_json(json.dumps(document), highlight=False)

    def checks(self, checks: list[Check]) -> None:
        if not self.out.is_terminal:
            for c in checks:
                fix = f" -> {c.fix}" if c.fix and not c.ok else ""
                self.result(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}{fix}")
            return
        table = Table(title="pre-flight checks")
        for column in ("", "check", "result", "fix"):
            table.add_column(column)
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            table.add_row(mark, escape(c.name), escape(c.detail), escape("" if c.ok else c.fix))
        self.out.print(table)

    def timeline(self, phases: Sequence[Phase]) -> None:
        """The rollout's phases with their durations and when each ended (stderr)."""
        if not phases:
            return
        origin = phases[0].started
        self.line("timeline:", "bold")
        for phase in phases:
            self.line(
                f"  {phase.name:<13}{phase.seconds:7.1f}s   done at +{phase.ended - origin:.1f}s"
            )
        self.line(f"  {'total':<13}{phases[-1].ended - origin:7.1f}s", "bold")

    def failures(self, failures: Sequence[TaskFailure]) -> None:
        """Each distinct way the rollout's tasks failed, with the task's last log lines."""
        for failure in failures:
            self.line(
                f"task {failure.task_id} (revision {failure.revision}): {failure.sentence}",
                "bold red",
            )
            exit_code = "" if failure.exit_code is None else f"; exit code {failure.exit_code}"
            self.line(f"  ECS: {failure.stopped_reason}{exit_code}", "red")
            if failure.container_reason:
                self.line(f"  container: {failure.container_reason}", "red")
            self.line(f"  hint: {failure.hint}", "yellow")
            if failure.log_tail:
                self.line(f"  its last {len(failure.log_tail)} log line(s):", "red")
                for text in failure.log_tail:
                    self.line(f"    | {text}", "dim")
            else:
                self.line("  it logged nothing (it never started)", "red")

    def releases(self, found: Sequence[Release]) -> None:
        """`releases`: newest first, the serving one marked (stdout, tab-separated)."""
        for release in found:
            seconds = "" if release.seconds is None else f"{release.seconds:.0f}s"
            mark = "*" if release.serving else " "
            self.result(
                "\t".join(
                    (
                        f"{mark} {release.revision}",
                        release.at,
                        release.commit,
                        release.image[:19],
                        f"schema {release.schema or '?'}",
                        seconds,
                        release.by,
                        f"snapshot {release.snapshot}" if release.snapshot else "",
                    )
                )
            )

    def environments(self, rows: Sequence[EnvironmentRow], now: datetime) -> None:
        """`status --all` (stdout, tab-separated, a header first): each environment's age,
        expiry and the monthly estimate of its settings; stderr says what the money is."""
        self.result("env\tage\texpires\tmonthly")
        for row in rows:
            expires = row.expires.strftime("%Y-%m-%dT%H:%M:%SZ") if row.expires else "-"
            if row.expired:
                expires += " (expired)"
            monthly = "-" if row.monthly_usd is None else f"${row.monthly_usd:.2f}"
            self.result("\t".join((row.name, row.age(now), expires, monthly)))
        self.line(
            "monthly: `nnote-deploy cost`'s estimate of each environment's settings in "
            "deploy.toml (list prices, 730 h), not its bill; age: since its log group was made"
        )

    def cost(self, report: CostReport) -> None:
        """`cost`'s result (stdout): a line per billed item, the total, where the prices came
        from and what was assumed."""
        for text in cost_lines(report):
            self.result(text)

    def cost_change(self, change: CostChange) -> None:
        """The last words of `plan` (and of `up` before it asks): what the changes do to the
        monthly cost, and where the prices came from."""
        self.line(change.sentence(), "bold")
        self.line(f"  prices: {change.prices.summary}", "dim")

    def calls(self, total: int, mutating: int) -> None:
        self.line(f"AWS API calls: {total} ({mutating} mutating)", "dim")


def change_lines(changes: list[Change]) -> list[str]:
    """`+ network: create ec2:vpc nnote-staging`, one per change, then the counts."""
    symbols = {"create": "+", "update": "~", "delete": "-"}
    lines = [
        f"{symbols.get(c.action, '?')} {c.component}: {c.action} {c.type} {c.name}"
        + (f" ({c.detail})" if c.detail else "")
        for c in changes
    ]
    counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "delete")}
    lines.append(
        f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete"
    )
    return lines


def cost_lines(report: CostReport) -> list[str]:
    """A header, then `Fargate vCPU  1 task x 0.25 vCPU x 730 h  0.04048/vCPU-hour  7.39`
    for each billed item, the total, where the prices came from and what was assumed."""
    row = "{:<26} {:<50} {:>24} {:>9}"
    lines = [row.format("item", "quantity", "USD per unit", "USD/month")]
    for line in report.estimate.lines:
        price = f"{line.unit_price:g}/{line.unit}" if line.price_key else "free"
        note = f"  ({line.note})" if line.note else ""
        lines.append(row.format(line.item, line.detail, price, f"{line.monthly:.2f}") + note)
    lines.append(row.format("total", "", "", f"{report.estimate.total:.2f}"))
    lines.append(f"prices: {report.prices.summary}")
    lines.append("assumptions:")
    lines += [f"  - {note}" for note in report.assumptions.notes()]
    return lines


def _table_fits(rows: Sequence[tuple[str, ...]], width: int) -> bool:
    """Whether a four-column table with these rows fits `width` without cutting a cell:
    each column takes its widest cell plus rich's padding and borders (3 per column, +1)."""
    headers = ("component", "type", "id", "state")
    widest = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    return sum(widest) + 3 * len(widest) + 1 <= width
