"""The run journal: what this run created or changed, and how to undo each, newest last.

Rollback undoes exactly these entries in reverse order. Entries are recorded only after a
mutating call succeeded, and a resource is created only after what it depends on, so the
reverse order is always a valid deletion order, even with steps running concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from deployer.errors import DeployError


@dataclass(frozen=True)
class Entry:
    component: str
    description: str  # "created vpc vpc-0abc", "changed db backup retention 7 -> 1"
    undo: Callable[[], None]
    # For a creation: the resource as the leak audit names it, (type, id) ("ec2:vpc", "vpc-0abc").
    made: tuple[str, str] | None = None


@dataclass
class RollbackReport:
    undone: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (entry, why)


class RunJournal:
    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()

    def record(
        self,
        component: str,
        description: str,
        undo: Callable[[], None],
        made: tuple[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._entries.append(Entry(component, description, undo, made))

    @property
    def made(self) -> set[tuple[str, str]]:
        """Every resource this run's journal knows it created."""
        return {entry.made for entry in self.entries if entry.made}

    @property
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def rollback(self, on_undo: Callable[[Entry], None] = lambda _e: None) -> RollbackReport:
        """Undo every entry, newest first; keep going past failures and report them."""
        report = RollbackReport()
        for entry in reversed(self.entries):
            on_undo(entry)
            try:
                entry.undo()
            except DeployError as error:
                report.failed.append((entry.description, error.message))
            except Exception as error:
                report.failed.append((entry.description, f"{type(error).__name__}: {error}"))
            else:
                report.undone.append(entry.description)
        return report
