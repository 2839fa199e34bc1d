"""`nnote-deploy logs`: the service's CloudWatch log lines, optionally followed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from deployer.aws import absent
from deployer.errors import ConfigError, DeployError
from deployer.steps.base import Run
from deployer.steps.runtime import log_group

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The unit words people write, by the unit they mean: "10min" is answered "did you mean 10m?".
UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
# CloudWatch Logs keeps events 10 years at most (retention 3653 days); further back is no log
# line, and a start before 1970 is an error FilterLogEvents answers.
LONGEST_SECONDS = 3653 * 86400
SINCE_HINT = "use a number and a unit: 30s, 10m, 2h or 1d"


def parse_since(text: str) -> float:
    """`--since`: seconds back, or ConfigError (exit 3); no AWS call."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise ConfigError(f"--since {text!r} is not a duration{_meant(text)}", hint=SINCE_HINT)
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > LONGEST_SECONDS:
        raise ConfigError(
            f"--since {text!r} is further back than CloudWatch Logs keeps anything (10 years)",
            hint="use at most 3653d",
        )
    return seconds


def _meant(text: str) -> str:
    """`; did you mean 10m?` for a duration written another way (10min, 2 hours, 1D)."""
    match = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", text.strip())
    if match:
        word = match.group(2).lower()
        for unit, words in UNIT_WORDS.items():
            if word in words:
                return f"; did you mean {int(match.group(1))}{unit}?"
    return ""


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
