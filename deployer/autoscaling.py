"""Target-tracking autoscaling of the service's task count (Application Auto Scaling).

Once autoscaling is on, the desired count belongs to the autoscaler: `up` never sets it
again (a busy service would otherwise be scaled back in by every deploy, and a no-change `up`
would never be quiet). Deregistering the scalable target deletes its scaling policies, and
deleting a target-tracking policy deletes the CloudWatch alarms made for it.
"""

from __future__ import annotations

from typing import Any

from deployer.aws import call
from deployer.config import AutoscalingSettings
from deployer.steps.base import Change, Run, undo_ignoring

SERVICE = "application-autoscaling"
COMPONENT = "service"


def autoscaled(run: Run) -> bool:
    return run.config.settings.service.autoscaling is not None


def initial_count(run: Run) -> int:
    """The tasks a new service starts with: desired_count, within the autoscaling range."""
    settings = run.config.settings.service
    if settings.autoscaling is None:
        return settings.desired_count
    low, high = settings.autoscaling.min_tasks, settings.autoscaling.max_tasks
    return min(max(settings.desired_count, low), high)


def target(run: Run) -> dict[str, str]:
    prefix = run.config.prefix
    return {
        "ServiceNamespace": "ecs",
        "ResourceId": f"service/{prefix}/{prefix}",
        "ScalableDimension": "ecs:service:DesiredCount",
    }


def policy_name(run: Run) -> str:
    return f"{run.config.prefix}-cpu"


def observe(run: Run) -> dict[str, Any] | None:
    """The scalable target, read even when not configured (a removed setting must be undone),
    with our policy's CPU target (`CpuTarget`) when autoscaling is configured."""
    wanted = target(run)
    found = call(
        run.aws,
        SERVICE,
        "describe_scalable_targets",
        ServiceNamespace="ecs",
        ResourceIds=[wanted["ResourceId"]],
        ScalableDimension=wanted["ScalableDimension"],
    )["ScalableTargets"]
    if not found:
        return None
    current = dict(found[0])
    if autoscaled(run):
        current["CpuTarget"] = _cpu_target(run, _policies(run))
    return current


def matches(wanted: AutoscalingSettings, current: dict[str, Any] | None) -> bool:
    return current is not None and (
        current["MinCapacity"],
        current["MaxCapacity"],
        current.get("CpuTarget"),
    ) == (wanted.min_tasks, wanted.max_tasks, float(wanted.cpu_target))


def _cpu_target(run: Run, policies: list[dict[str, Any]]) -> float | None:
    for policy in policies:
        configuration = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
        if policy["PolicyName"] == policy_name(run) and "TargetValue" in configuration:
            return float(configuration["TargetValue"])
    return None


def changes(run: Run, current: dict[str, Any] | None) -> list[Change]:
    wanted, prefix = run.config.settings.service.autoscaling, run.config.prefix
    if wanted is None:
        return (
            [Change(COMPONENT, "delete", "autoscaling", prefix, "not configured")]
            if current
            else []
        )
    if matches(wanted, current):
        return []
    detail = f"{wanted.min_tasks}-{wanted.max_tasks} tasks, CPU {wanted.cpu_target}%"
    return [Change(COMPONENT, "update", "autoscaling", prefix, detail)]


def converge(run: Run, current: dict[str, Any] | None) -> None:
    """Register, change or remove the target and its policy; each call journaled with an
    exact undo, so a failure between them leaves nothing half-done."""
    if not changes(run, current):
        return
    wanted = run.config.settings.service.autoscaling
    if wanted is None:
        previous_target = current.get("CpuTarget") if current else None
        remove(run)
        run.journal.record(
            COMPONENT, "removed autoscaling", lambda: _restore(run, current, previous_target)
        )
        return
    if not current or (current["MinCapacity"], current["MaxCapacity"]) != (
        wanted.min_tasks,
        wanted.max_tasks,
    ):
        _register(run, wanted.min_tasks, wanted.max_tasks)
        run.journal.record(
            COMPONENT,
            f"set autoscaling {wanted.min_tasks}-{wanted.max_tasks} tasks",
            lambda: _restore_range(run, current),
        )
    previous = current.get("CpuTarget") if current else None
    if previous != float(wanted.cpu_target):
        _put_policy(run, float(wanted.cpu_target))
        run.journal.record(
            COMPONENT,
            f"set the CPU target to {wanted.cpu_target}%",
            lambda: _restore_policy(run, previous),
        )


def remove(run: Run) -> None:
    """Deregister the target; its policy and alarms go with it."""
    undo_ignoring(
        ("ObjectNotFoundException",),
        lambda: call(run.aws, SERVICE, "deregister_scalable_target", **target(run)),
    )()


def _register(run: Run, low: int, high: int) -> None:
    call(
        run.aws,
        SERVICE,
        "register_scalable_target",
        **target(run),
        MinCapacity=low,
        MaxCapacity=high,
    )


def _put_policy(run: Run, cpu_target: float) -> None:
    call(
        run.aws,
        SERVICE,
        "put_scaling_policy",
        **target(run),
        PolicyName=policy_name(run),
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": cpu_target,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
        },
    )


def _policies(run: Run) -> list[dict[str, Any]]:
    wanted = target(run)
    return list(
        call(
            run.aws,
            SERVICE,
            "describe_scaling_policies",
            ServiceNamespace="ecs",
            ResourceId=wanted["ResourceId"],
            ScalableDimension=wanted["ScalableDimension"],
        )["ScalingPolicies"]
    )


def _restore(run: Run, previous: dict[str, Any] | None, cpu_target: float | None) -> None:
    """Put back a removed target and its policy."""
    _restore_range(run, previous)
    if previous is not None:
        _restore_policy(run, cpu_target)


def _restore_range(run: Run, previous: dict[str, Any] | None) -> None:
    if previous is None:
        remove(run)  # the policy goes with the target
    else:
        _register(run, previous["MinCapacity"], previous["MaxCapacity"])


def _restore_policy(run: Run, cpu_target: float | None) -> None:
    if cpu_target is not None:
        _put_policy(run, cpu_target)
        return
    undo_ignoring(
        ("ObjectNotFoundException",),
        lambda: call(
            run.aws, SERVICE, "delete_scaling_policy", **target(run), PolicyName=policy_name(run)
        ),
    )()
