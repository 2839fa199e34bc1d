"""A rollout's phases, each ending at a moment AWS reports where AWS gives a timestamp, so
those durations are AWS's and not the watcher's polling.

build, push, register, and a release's snapshot and migration are ours (timed around our
calls); provisioning, pull and start end
at the newest task's `pullStartedAt`, `pullStoppedAt` and `startedAt` (AWS's clock); healthy
when every new target passes the load balancer's check and traffic when no old target still
serves: Elastic Load Balancing gives no time for a health change, so these two are when the
watcher saw it (accurate to one poll, under two seconds); drained at the deployment's
`updatedAt` when ECS calls it COMPLETED (the old tasks are stopped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PHASES = (
    "build",
    "push",
    "register",
    "snapshot",
    "migrate",
    "provisioning",
    "pull",
    "start",
    "healthy",
    "traffic",
    "drained",
)
OURS = PHASES[:5]
ROLLOUT_PHASES = PHASES[5:]


@dataclass(frozen=True)
class Phase:
    name: str
    started: float  # epoch seconds
    ended: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended - self.started)

    def as_json(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Timeline:
    """Phase boundaries as they become known; `phases()` orders them."""

    spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # ours: build..migrate
    rollout_started: float | None = None
    ends: dict[str, float] = field(default_factory=dict)  # provisioning..drained

    def span(self, phase: str, started: float, ended: float) -> None:
        self.spans[phase] = (started, ended)

    def end(self, phase: str, at: float) -> bool:
        """Record when `phase` ended; True if that is news (the first time it is known)."""
        if phase in self.ends:
            return False
        self.ends[phase] = at
        return True

    def phases(self) -> list[Phase]:
        found = [Phase(name, *self.spans[name]) for name in OURS if name in self.spans]
        previous = self.rollout_started
        for name in ROLLOUT_PHASES:
            if name not in self.ends or previous is None:
                continue
            ended = max(self.ends[name], previous)
            found.append(Phase(name, previous, ended))
            previous = ended
        return found

    @property
    def total_seconds(self) -> float:
        phases = self.phases()
        return phases[-1].ended - phases[0].started if phases else 0.0

    def as_json(self) -> list[dict[str, Any]]:
        return [phase.as_json() for phase in self.phases()]


def epoch(value: Any) -> float | None:
    """A timestamp as botocore gives it (datetime) or as JSON carries it (number, ISO)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def _iso(seconds: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
