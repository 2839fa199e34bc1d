"""`nnote-deploy logs`: the service's CloudWatch log lines, optionally followed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from deployer.aws import absent
from deployer.errors import ConfigError
from deployer.steps.base import Run
from deployer.steps.runtime import log_group

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise ConfigError(f"--since {text!r} is not a duration", hint="use e.g. 30s, 10m, 2h or 1d")
    return int(match.group(1)) * UNITS[match.group(2)]


def tail(run: Run, since_seconds: float, follow: bool) -> Iterator[str]:
    """Yield `time stream message` lines from `since_seconds` ago; with `follow`, forever."""
    start = int((time.time() - since_seconds) * 1000)
    seen: set[str] = set()
    while True:
        for event in _events(run, start):
            if event["eventId"] in seen:
                continue
            seen.add(event["eventId"])
            start = max(start, event["timestamp"])
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["timestamp"] / 1000))
            yield f"{stamp} {event.get('logStreamName', '')} {event['message'].rstrip()}"
        if not follow:
            return
        run.sleep(2.0)


def _events(run: Run, start_ms: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"logGroupName": log_group(run), "startTime": start_ms, "interleaved": True}
        if token:
            params["nextToken"] = token
        answer = absent(
            run.aws, "logs", "filter_log_events", ("ResourceNotFoundException",), **params
        )
        if answer is None:
            return events
        events += answer.get("events", [])
        token = answer.get("nextToken")
        if not token or not answer.get("events"):
            return events
