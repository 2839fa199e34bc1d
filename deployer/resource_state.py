"""One word for a resource's state, whatever the service calls it: the `state` of `status --json`.

Each AWS service has its own vocabulary ("available", "active", "Deployed", "ISSUED",
"PENDING_VALIDATION", "1/2 running, rollout IN_PROGRESS"); scripts should not have to know
them all. The service's own words stay beside it, as `detail`.
"""

from __future__ import annotations

import re
from enum import StrEnum


class State(StrEnum):
    READY = "ready"  # exists and does its job
    CHANGING = "changing"  # being created, modified or rolled out
    DELETING = "deleting"  # on its way out
    STOPPED = "stopped"  # exists but does not serve (stopped database, disabled distribution)
    FAILED = "failed"  # AWS says it is broken
    UNKNOWN = "unknown"  # a word we do not know: look at `detail`


# AWS's words, lower-cased, with - and space as _.
_WORDS = {
    State.READY: {
        "available", "active", "deployed", "issued", "complete", "attached", "in_use",
        "completed", "exists",
    },
    State.CHANGING: {
        "pending", "creating", "provisioning", "modifying", "inprogress", "in_progress",
        "pending_validation", "backing_up", "configuring_enhanced_monitoring", "rebooting",
        "renaming", "resetting_master_credentials", "starting", "upgrading", "maintenance",
        "storage_optimization", "configuring_log_exports", "moving_to_vpc", "updating",
        "storage_initialization", "storage_config_upgrade", "configuring_iam_database_auth",
        "converting_to_vpc", "copying",
    },
    State.DELETING: {"deleting", "deprovisioning", "draining", "deleted", "delete_precheck"},
    State.STOPPED: {"stopped", "stopping", "disabled", "inactive"},
    State.FAILED: {
        "failed", "active_impaired", "incompatible_network", "incompatible_option_group",
        "incompatible_parameters", "incompatible_restore", "inaccessible_encryption_credentials",
        "storage_full", "expired", "revoked", "validation_timed_out", "insufficient_capacity",
        "restore_error", "inaccessible_encryption_credentials_recoverable", "unavailable",
        "failed_insufficient_capacity",
        "detached",  # an internet gateway off its VPC: drift that breaks the app (up repairs it)
    },
}  # fmt: skip
_STATE_OF_WORD = {word: state for state, words in _WORDS.items() for word in words}

# Types whose detail describes the resource rather than its state (a task definition's image,
# a listener's action, a record's role): if they are listed, they are there and in use.
_DESCRIPTIVE = {
    "ecs:task-definition",
    "image",
    "route53:record",
    "elbv2:listener",
    "elbv2:listener-rule",
    "elbv2:targetgroup",
    "logs:log-group",
    "cloudwatch:alarm",  # OK / ALARM is the metric's state; the alarm itself is in place
}

_SERVICE = re.compile(r"(\d+)/(\d+) running, rollout (\S+)")


def state_of(kind: str, detail: str) -> State:
    if kind == "ecs:service" and _SERVICE.fullmatch(detail):
        return _service_state(detail)
    if kind in _DESCRIPTIVE:
        return State.READY
    return _STATE_OF_WORD.get(re.sub(r"[- ]", "_", detail.strip().lower()), State.UNKNOWN)


def _service_state(detail: str) -> State:
    """From `status`'s "1/2 running, rollout IN_PROGRESS" (the leak audit says "ACTIVE"):
    the rollout first, then the service's health."""
    match = _SERVICE.fullmatch(detail)
    assert match
    running, desired, rollout = int(match[1]), int(match[2]), match[3].upper()
    served = health(desired, running)
    if rollout == "FAILED" or (served == "down" and rollout != "IN_PROGRESS"):
        return State.FAILED
    if served == "stopped":
        return State.STOPPED
    if rollout == "IN_PROGRESS" or running != desired:
        return State.CHANGING
    return State.READY


def health(desired: int, running: int) -> str:
    """A service's health, `status`'s first answer: healthy: every wanted task runs; degraded:
    some do; down: none does; stopped: none is wanted. ECS stops and replaces a task that
    fails the load balancer's health checks, so the running count is the tasks that serve (or
    are in their start-up grace period)."""
    if desired == 0:
        return "stopped"
    if running == 0:
        return "down"
    return "healthy" if running >= desired else "degraded"
