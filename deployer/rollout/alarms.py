"""Alarm-based rollback: two CloudWatch alarms on the target group, attached to the service's
deployment configuration, so ECS rolls back a revision that starts and passes its health
check but then serves errors (5xx share of requests) or slowly (p95 response time).
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html

Optional (`service.rollout.alarms`); created, tagged, planned and deleted with the service.
The alarms judge each one-minute period; with no requests they stay OK (notBreaching).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployer.aws import call
from deployer.inventory import Resource
from deployer.steps.base import Change, Run, undo_ignoring

COMPONENT = "service"
NAMESPACE = "AWS/ApplicationELB"
PERIOD = 60
# Two bad minutes of the last three: one slow request in a quiet minute does not roll back.
EVALUATION = {"EvaluationPeriods": 3, "DatapointsToAlarm": 2}


def names(run: Run) -> list[str]:
    return [f"{run.config.prefix}-rollout-5xx", f"{run.config.prefix}-rollout-p95"]


def deployment_alarms(run: Run) -> dict[str, Any]:
    """deploymentConfiguration.alarms: ours with rollback, or off."""
    if not run.config.settings.service.rollout.alarms:
        return {"alarmNames": [], "enable": False, "rollback": False}
    return {"alarmNames": names(run), "enable": True, "rollback": True}


def observe(run: Run) -> dict[str, dict[str, Any]]:
    """Our alarms that exist, by name (read even when off: a removed setting is undone)."""
    found = call(run.aws, "cloudwatch", "describe_alarms", AlarmNames=names(run))
    return {alarm["AlarmName"]: alarm for alarm in found.get("MetricAlarms", [])}


def resources(found: dict[str, dict[str, Any]]) -> list[Resource]:
    return [
        Resource(COMPONENT, "cloudwatch:alarm", name, alarm.get("StateValue", "?"))
        for name, alarm in sorted(found.items())
    ]


def changes(run: Run, found: dict[str, dict[str, Any]]) -> list[Change]:
    wanted = run.config.settings.service.rollout.alarms
    if not wanted:
        return [Change(COMPONENT, "delete", "cloudwatch:alarm", name) for name in sorted(found)]
    rollout = run.config.settings.service.rollout
    what = {
        names(run)[0]: f"5xx over {rollout.alarm_5xx_percent:g}% rolls back",
        names(run)[1]: f"p95 over {rollout.alarm_p95_seconds:g}s rolls back",
    }
    wanted_params = _wanted_from_observations(run)
    return [
        Change(COMPONENT, "create" if name not in found else "update", "cloudwatch:alarm", name, d)
        for name, d in what.items()
        if name not in found or _differs(found[name], wanted_params.get(name), run)
    ]


def _wanted_from_observations(run: Run) -> dict[str, dict[str, Any]]:
    """The alarms `up` would put, by name, if `plan` saw the load balancer and target group."""
    observed = run.observed.get("loadbalancer") or {}
    lb, tg = observed.get("lb"), observed.get("tg")
    if not lb or not tg:
        return {}
    return {p["AlarmName"]: p for p in wanted(run, lb["LoadBalancerArn"], tg["TargetGroupArn"])}


def converge(run: Run, found: dict[str, dict[str, Any]], lb_arn: str, tg_arn: str) -> None:
    """Create or correct the alarms (before the service names them), or remove them."""
    if not run.config.settings.service.rollout.alarms:
        if found:  # the service stops naming them first (the update that follows)
            run.retire(COMPONENT, "the rollout alarms", lambda: remove(run))
        return
    for params in wanted(run, lb_arn, tg_arn):
        name = params["AlarmName"]
        if name in found and not _differs(found[name], params, run):
            continue
        call(run.aws, "cloudwatch", "put_metric_alarm", **params, Tags=run.owner.tags(COMPONENT))
        if name not in found:
            run.journal.record(COMPONENT, f"created alarm {name}", _deleter(run, name))


def _deleter(run: Run, name: str) -> Callable[[], None]:
    return lambda: _delete(run, [name])


def remove(run: Run) -> None:
    _delete(run, names(run))


def _delete(run: Run, alarm_names: list[str]) -> None:
    undo_ignoring(
        ("ResourceNotFound",),
        lambda: call(run.aws, "cloudwatch", "delete_alarms", AlarmNames=alarm_names),
    )()


def wanted(run: Run, lb_arn: str, tg_arn: str) -> list[dict[str, Any]]:
    rollout = run.config.settings.service.rollout
    dimensions = [
        {"Name": "LoadBalancer", "Value": lb_arn.split(":loadbalancer/", 1)[-1]},
        {"Name": "TargetGroup", "Value": tg_arn.rsplit(":", 1)[-1]},
    ]
    errors_name, slow_name = names(run)

    def metric(name: str, stat: str) -> dict[str, Any]:
        return {
            "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
            "Period": PERIOD,
            "Stat": stat,
        }

    return [
        {
            "AlarmName": errors_name,
            "AlarmDescription": f"nnote-deploy: 5xx share of {run.config.prefix}'s requests",
            "Metrics": [
                {
                    # A minute without requests divides by zero: no data point, not an alarm.
                    "Id": "share",
                    "Expression": "100 * errors / requests",
                    "Label": "5xx percent",
                    "ReturnData": True,
                },
                {
                    "Id": "errors",
                    "MetricStat": metric("HTTPCode_Target_5XX_Count", "Sum"),
                    "ReturnData": False,
                },
                {
                    "Id": "requests",
                    "MetricStat": metric("RequestCount", "Sum"),
                    "ReturnData": False,
                },
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": rollout.alarm_5xx_percent,
            "TreatMissingData": "notBreaching",
            **EVALUATION,
        },
        {
            "AlarmName": slow_name,
            "AlarmDescription": f"nnote-deploy: p95 response time of {run.config.prefix}",
            "Namespace": NAMESPACE,
            "MetricName": "TargetResponseTime",
            "Dimensions": dimensions,
            "ExtendedStatistic": "p95",
            "Period": PERIOD,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": rollout.alarm_p95_seconds,
            "TreatMissingData": "notBreaching",
            **EVALUATION,
        },
    ]


def _differs(alarm: dict[str, Any], wanted_params: dict[str, Any] | None, run: Run) -> bool:
    """The threshold differs, or (when known) the load balancer or target group it watches:
    an alarm left on a replaced target group gets no data and would never roll back."""
    rollout = run.config.settings.service.rollout
    threshold = {
        names(run)[0]: rollout.alarm_5xx_percent,
        names(run)[1]: rollout.alarm_p95_seconds,
    }[alarm["AlarmName"]]
    if float(alarm.get("Threshold", -1)) != float(threshold):
        return True
    return wanted_params is not None and _dimensions(alarm) != _dimensions(wanted_params)


def _dimensions(alarm: dict[str, Any]) -> list[tuple[str, str]]:
    """Every dimension an alarm's metric (or its metric math's metrics) names, sorted."""
    found = list(alarm.get("Dimensions") or [])
    for metric in alarm.get("Metrics") or []:
        found += ((metric.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions") or []
    return sorted({(d["Name"], d["Value"]) for d in found})
