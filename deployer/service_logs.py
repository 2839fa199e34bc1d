"""`nnote-deploy logs`: the service's CloudWatch log lines, optionally followed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from deployer.aws import absent
from deployer.errors import DeployError
from deployer.steps.base import Run
from deployer.steps.runtime import log_group
from deployer.validation import parse_since as parse_since  # `logs --since`


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
        if answer is None:  # the log group does not exist: nothing was ever deployed here
            env = run.config.env
            raise DeployError(
                f"no logs: environment {env} has no log group (is it deployed?)",
                f"run `nnote-deploy up --env {env}` first",
            )
        events += answer.get("events", [])
        token = answer.get("nextToken")
        if not token or not answer.get("events"):
            return events
