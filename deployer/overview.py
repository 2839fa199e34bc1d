"""`status --all`: every environment of the app, with its age, its expiry (previews) and
what its settings cost a month.

Environments are found in the tag inventory (deployer.inventory.tagged_by_env), so one that
deploy.toml no longer names still shows. The age is the creation time of its log group
(`/nnote/APP-ENV`, made by the first `up` before the service), read for every environment
of the app in one listing; the cost is `nnote-deploy cost`'s estimate of the settings
deploy.toml gives it (its [env] table, or the [preview] template), not a bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployer import config as config_module
from deployer import inventory, previews
from deployer.aws import Aws, paginate
from deployer.cost import report as cost_report
from deployer.errors import DeployError
from deployer.inventory import Owner
from deployer.steps.base import Run


@dataclass(frozen=True)
class EnvironmentRow:
    name: str
    preview: bool
    created: datetime | None
    expires: datetime | None
    expired: bool
    monthly_usd: float | None  # None: deploy.toml no longer describes it
    cost_basis: str  # which settings were priced, and where the prices came from

    def age(self, now: datetime) -> str:
        if self.created is None:
            return "-"
        seconds = (now - self.created).total_seconds()
        return f"{seconds / 86400:.1f}d" if seconds >= 86400 else f"{seconds / 3600:.1f}h"

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "preview": self.preview,
            "created": _iso(self.created),
            "age": self.age(now),
            "expires": _iso(self.expires),
            "expired": self.expired,
            "monthly_usd": self.monthly_usd,
            "cost_basis": self.cost_basis,
        }


def _iso(when: datetime | None) -> str | None:
    return when.strftime(previews.FORMAT) if when else None


def environments(aws: Aws, path: Path, now: datetime) -> list[EnvironmentRow]:
    """Every environment of deploy.toml's app in the tag inventory, oldest first."""
    app = config_module.load_app(path, aws.region)
    found = previews.environments(inventory.tagged_by_env(aws, app.app), app.declared)
    created = _log_group_times(aws, app.app)
    rows = [
        EnvironmentRow(
            env.name,
            env.preview,
            created.get(env.name),
            env.expires,
            env.expired(now),
            *_monthly(aws, path, env.name, env.name in app.declared or env.preview),
        )
        for env in found
    ]
    return sorted(rows, key=lambda r: (r.created or now, r.name))


def _log_group_times(aws: Aws, app: str) -> dict[str, datetime]:
    """When each environment's log group was made, by environment: one listing."""
    prefix = f"/nnote/{app}-"
    groups = paginate(aws, "logs", "describe_log_groups", "logGroups", logGroupNamePrefix=prefix)
    return {
        group["logGroupName"].removeprefix(prefix): datetime.fromtimestamp(
            group["creationTime"] / 1000, UTC
        )
        for group in groups
        if "creationTime" in group
    }


def _monthly(aws: Aws, path: Path, env: str, described: bool) -> tuple[float | None, str]:
    if not described:
        return None, "not in deploy.toml: no settings to price"
    settings = config_module.load(path, env, aws.region)
    run = Run(aws=aws, config=settings, owner=Owner(settings.app, env, "status"))
    try:
        estimate = cost_report.of_settings(run)
    except DeployError as error:
        return None, f"not estimated: {error.message}"
    table = "[preview]" if settings.preview else f"[env.{env}]"
    return round(estimate.estimate.total, 2), f"deploy.toml {table}; {estimate.prices.summary}"
