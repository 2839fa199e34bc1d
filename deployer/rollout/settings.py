"""The service's side of deploy.toml's [service.rollout]: the health check grace period and
the deployment configuration (circuit breaker always on with rollback; the rollout alarms
when configured), as wanted and as a service reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.rollout import alarms

if TYPE_CHECKING:
    from deployer.steps.base import Run


def rollout_settings(run: Run) -> dict[str, Any]:
    """The service's side of deploy.toml's [service.rollout]: grace period and deployment
    configuration (the circuit breaker always on, with rollback)."""
    rollout = run.config.settings.service.rollout
    return {
        "healthCheckGracePeriodSeconds": rollout.grace_period_seconds,
        "deploymentConfiguration": {
            "maximumPercent": rollout.maximum_percent,
            "minimumHealthyPercent": rollout.minimum_healthy_percent,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "alarms": alarms.deployment_alarms(run),
        },
    }


def current_rollout_settings(service: dict[str, Any]) -> dict[str, Any]:
    """The same keys as a service reports them (ECS adds others, e.g. alarms: not ours)."""
    configuration = service.get("deploymentConfiguration") or {}
    found = configuration.get("alarms") or {}
    return {
        "healthCheckGracePeriodSeconds": service.get("healthCheckGracePeriodSeconds"),
        "deploymentConfiguration": {
            "maximumPercent": configuration.get("maximumPercent"),
            "minimumHealthyPercent": configuration.get("minimumHealthyPercent"),
            # ECS adds its own keys (resetOnHealthyTask, thresholdConfiguration): ours only.
            "deploymentCircuitBreaker": {
                key: (configuration.get("deploymentCircuitBreaker") or {}).get(key)
                for key in ("enable", "rollback")
            },
            # ECS may leave out alarms that are off; off is off, whatever the names.
            "alarms": {
                "alarmNames": sorted(found.get("alarmNames") or []) if found.get("enable") else [],
                "enable": bool(found.get("enable")),
                "rollback": bool(found.get("rollback")) and bool(found.get("enable")),
            },
        },
    }


def known(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as an update takes them back: what the service did not report is left out."""
    kept: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            value = known(value)
        if value not in (None, {}):
            kept[key] = value
    return kept
