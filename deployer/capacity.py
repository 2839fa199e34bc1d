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
"""

from __future__ import annotations

from typing import Any

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"
PROVIDERS = (FARGATE, FARGATE_SPOT)


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
