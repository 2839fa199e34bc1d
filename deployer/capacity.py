"""Where the service's tasks run: on-demand Fargate, or Fargate Spot (`service.spot`).

Spot is a capacity provider, not a launch type: the cluster must have the FARGATE and
FARGATE_SPOT providers associated (CreateCluster's `capacityProviders`, or
PutClusterCapacityProviders on a cluster that exists), and the service names a capacity
provider strategy instead of `launchType` (CreateService takes one or the other, never both).

An existing service moves between the two in place, with UpdateService's
`capacityProviderStrategy` and `forceNewDeployment` (ECS refuses the switch from a launch type
to a strategy, or a change of strategy, without a new deployment): its tasks are replaced
like in any rollout. Back to on-demand is a strategy of FARGATE alone rather than the launch
type again (UpdateService has no `launchType`; an empty strategy's return to "the launch type"
is not said to be FARGATE): the same tasks, at the same price. So a service created with
`launchType` FARGATE, or moved back with the FARGATE provider, both count as on-demand.

One-off tasks (the migration, `nnote-deploy run`) always run on demand (RunTask with
`launchType` FARGATE, deployer/oneoff.py): a migration interrupted halfway costs more than
the pennies Spot would save. Neither the cluster's providers nor its default strategy (none
is set) changes that.

A cluster applies a change of its providers for a while after the call (its attachmentsStatus
is UPDATE_IN_PROGRESS); meanwhile ECS refuses another PutClusterCapacityProviders with
UpdateInProgressException. `add_providers` waits that out within the run's budget.
"""

from __future__ import annotations

from itertools import count
from typing import TYPE_CHECKING, Any

from deployer.aws import call, retry_while

if TYPE_CHECKING:
    from deployer.steps.base import Run

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"
PROVIDERS = (FARGATE, FARGATE_SPOT)
COMPONENT = "runtime"  # the step that owns the cluster (deployer/steps/runtime.py)
# What ECS answers while the cluster still applies an earlier change (ours, retried by botocore
# after a lost answer, or anyone's): UpdateInProgressException, and ResourceInUseException when
# the list sent would drop a provider that change added and a task already uses (the answer the
# Terraform AWS provider retries too). Both pass once the cluster is read again.
CLUSTER_BUSY = ("UpdateInProgressException", "ResourceInUseException")


def on_spot(service: dict[str, Any]) -> bool:
    """Whether an ECS service (as DescribeServices answers) runs its tasks on Fargate Spot."""
    return any(
        item.get("capacityProvider") == FARGATE_SPOT
        for item in service.get("capacityProviderStrategy") or []
    )


def strategy(spot: bool) -> list[dict[str, Any]]:
    return [{"capacityProvider": FARGATE_SPOT if spot else FARGATE, "weight": 1}]


def placement(spot: bool) -> dict[str, Any]:
    """CreateService's parameters for where the tasks run."""
    return {"capacityProviderStrategy": strategy(True)} if spot else {"launchType": FARGATE}


def switch(service: dict[str, Any], spot: bool) -> dict[str, Any]:
    """UpdateService's parameters that put an existing service on Spot or on demand; {} when
    it is there already."""
    if on_spot(service) == spot:
        return {}
    return {"capacityProviderStrategy": strategy(spot), "forceNewDeployment": True}


def missing_providers(cluster: dict[str, Any]) -> list[str]:
    """The Fargate capacity providers the cluster lacks (as DescribeClusters answers)."""
    have = set(cluster.get("capacityProviders") or [])
    return [p for p in PROVIDERS if p not in have]


def providers_update(cluster: dict[str, Any]) -> dict[str, Any]:
    """PutClusterCapacityProviders' parameters adding FARGATE and FARGATE_SPOT. The call
    replaces the whole list (a provider left out is disassociated) and the default strategy
    (an empty one: none), so both are given as they are, plus ours."""
    have = list(cluster.get("capacityProviders") or [])
    return {
        "cluster": cluster["clusterName"],
        "capacityProviders": have + missing_providers(cluster),
        "defaultCapacityProviderStrategy": cluster.get("defaultCapacityProviderStrategy") or [],
    }


def describe(spot: bool) -> str:
    return "Fargate Spot" if spot else "on-demand Fargate"


def add_providers(run: Run, cluster: dict[str, Any]) -> None:
    """Associate FARGATE and FARGATE_SPOT with `cluster` (as DescribeClusters answered it),
    waiting out an update the cluster is still applying. Each retry reads the cluster again:
    the call replaces the whole list, and that update may have changed it (or added ours)."""
    name = cluster["clusterName"]
    attempts = count()

    def put() -> None:
        current = cluster if next(attempts) == 0 else _described(run, name) or cluster
        if missing_providers(current):
            call(run.aws, "ecs", "put_cluster_capacity_providers", **providers_update(current))

    retry_while(
        CLUSTER_BUSY,
        run.dependency_budget_seconds,
        put,
        lambda code, left: run.note(
            COMPONENT,
            f"cluster {name} is still applying an earlier change ({code}); {left:.0f}s left",
        ),
        delay=min(5.0, run.poll_seconds),
        sleep=run.sleep,
    )


def _described(run: Run, name: str) -> dict[str, Any] | None:
    found = call(run.aws, "ecs", "describe_clusters", clusters=[name])["clusters"]
    return dict(found[0]) if found else None
