"""`service.spot`: the service's tasks on Fargate Spot (staging's and previews' default), moved
in place both ways on an existing service, the cluster given the Fargate capacity providers
first, one-off tasks kept on demand, and Spot interruptions never judged a failed revision.

The realism layer holds the calls to ECS's rules that moto skips (a strategy only of providers
the cluster has, forceNewDeployment to change one, the strategy reported back)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from deployer import capacity, pipeline
from deployer.aws import AwsError
from deployer.cost import footprint
from deployer.rollout import failures
from deployer.steps.base import Change, Run
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth
from tests.deployer.sweep import QuietEvents
from tests.support.realism import Realism
from tests.support.realism_clusters import ClusterUpdates

STEPS = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
ON_DEMAND = [{"capacityProvider": "FARGATE", "weight": 1}]


def staging(spot: bool) -> Run:
    """A staging run with `service.spot` as an edit of deploy.toml would set it."""
    run = make_run("staging")
    service = run.config.settings.service.model_copy(update={"spot": spot})
    run.config = run.config.model_copy(
        update={"settings": run.config.settings.model_copy(update={"service": service})}
    )
    return run


def up(spot: bool) -> tuple[pipeline.UpResult, Run]:
    run = staging(spot)
    return pipeline.up(run, QuietEvents(), steps=STEPS), run


def planned(spot: bool) -> list[Change]:
    return pipeline.plan(staging(spot), STEPS)


def sent(realism: Realism, operation: str) -> list[dict[str, Any]]:
    """The parameters of each `operation` the deployer sent to ECS, as AWS received them."""
    return [c.params for c in realism.calls if (c.service, c.operation) == ("ecs", operation)]


def on_spot() -> bool:
    """What the deployer reads back of the service: its footprint's tasks run on Spot."""
    run = staging(True)
    pipeline.plan(run, STEPS)
    tasks = footprint.deployed(run.config, run.observed).tasks
    assert tasks is not None
    return tasks.spot


def test_staging_is_created_on_spot_and_a_second_up_changes_nothing(
    aws_env: dict[str, str], realism: Realism
) -> None:
    assert make_run("staging").config.settings.service.spot, "deploy.toml: staging on Spot"
    creates = [c for c in planned(True) if c.type == "ecs:service"]
    assert [c.detail for c in creates] == ["1 task(s), circuit breaker, Fargate Spot"]
    up(True)
    # (ECS refuses the first tries while the new roles propagate: each try is the same)
    creates = sent(realism, "CreateService")
    assert creates and all(c["capacityProviderStrategy"] == SPOT for c in creates)
    assert not any("launchType" in c for c in creates)
    [cluster] = sent(realism, "CreateCluster")
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert on_spot()
    realism.calls.clear()
    assert up(True)[0].changes == [] and planned(True) == []
    assert not sent(realism, "UpdateService"), "converged: nothing sent"


def test_the_migration_task_runs_on_demand_even_on_spot(
    aws_env: dict[str, str], realism: Realism
) -> None:
    up(True)
    tasks = sent(realism, "RunTask")
    assert tasks, "the first release migrates the new database"
    assert all(t["launchType"] == "FARGATE" for t in tasks)
    assert not any(t.get("capacityProviderStrategy") for t in tasks)


def test_an_on_demand_service_moves_to_spot_in_place_and_back(
    aws_env: dict[str, str], realism: Realism
) -> None:
    up(False)
    creates = sent(realism, "CreateService")
    assert all(c["launchType"] == "FARGATE" for c in creates)
    assert not any("capacityProviderStrategy" in c for c in creates)
    assert not on_spot()
    arn = boto3.client("ecs", region_name=REGION).describe_services(
        cluster="nnote-staging", services=["nnote-staging"]
    )["services"][0]["serviceArn"]

    moves = [c for c in planned(True) if c.type == "ecs:service"]
    assert [c.detail for c in moves] == [
        "on-demand Fargate -> Fargate Spot (a new deployment replaces the tasks)"
    ]
    realism.calls.clear()
    _, run = up(True)
    [update] = sent(realism, "UpdateService")
    assert update["capacityProviderStrategy"] == SPOT and update["forceNewDeployment"] is True
    assert not sent(realism, "CreateService") and not sent(realism, "DeleteService")
    assert run.rollout is not None and run.rollout.completed, "the new tasks were watched"
    assert on_spot() and planned(True) == []

    moves = [c for c in planned(False) if c.type == "ecs:service"]
    assert [c.detail for c in moves] == [
        "Fargate Spot -> on-demand Fargate (a new deployment replaces the tasks)"
    ]
    realism.calls.clear()
    up(False)
    [update] = sent(realism, "UpdateService")
    assert update["capacityProviderStrategy"] == ON_DEMAND and update["forceNewDeployment"]
    assert not on_spot() and planned(False) == []
    same = boto3.client("ecs", region_name=REGION).describe_services(
        cluster="nnote-staging", services=["nnote-staging"]
    )["services"][0]["serviceArn"]
    assert same == arn, "the same service throughout: never recreated"


def test_spot_on_a_cluster_without_the_fargate_providers_adds_them_first(
    aws_env: dict[str, str], realism: Realism
) -> None:
    """A cluster made before `service.spot` existed (no capacity providers)."""
    up(False)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.put_cluster_capacity_providers(
        cluster="nnote-staging", capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    clusters = [c for c in planned(True) if c.type == "ecs:cluster"]
    assert [(c.action, c.detail) for c in clusters] == [
        ("update", "capacity providers + FARGATE, FARGATE_SPOT")
    ]
    assert planned(False) == [], "an on-demand service needs no provider"
    realism.calls.clear()
    up(True)
    names = [f"{c.service}:{c.operation}" for c in realism.calls]
    put = names.index("ecs:PutClusterCapacityProviders")
    assert put < names.index("ecs:UpdateService"), "associated before the service names them"
    cluster = ecs.describe_clusters(clusters=["nnote-staging"])["clusters"][0]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert on_spot() and planned(True) == []


# -- a cluster still applying an earlier change ------------------------------------------------


class Notes:
    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    def step_note(self, step: str, message: str) -> None:
        self.said.append((step, message))


@pytest.fixture
def cluster_updates(realism: Realism, monkeypatch: pytest.MonkeyPatch) -> ClusterUpdates:
    """The realism rule of clusters' provider updates: the layer's own once it holds one, else
    one added for this test only."""
    registered = [rule for rule in realism.rules if isinstance(rule, ClusterUpdates)]
    if registered:
        return registered[0]
    rule = ClusterUpdates(realism)
    monkeypatch.setattr(realism, "rules", [*realism.rules, rule])
    return rule


def without_providers() -> dict[str, Any]:
    """Staging's cluster, deployed on demand, then stripped of its providers (as one made
    before `service.spot` existed): what the runtime step observed before adding them."""
    up(False)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.put_cluster_capacity_providers(
        cluster="nnote-staging", capacityProviders=[], defaultCapacityProviderStrategy=[]
    )
    return dict(ecs.describe_clusters(clusters=["nnote-staging"])["clusters"][0])


def providers() -> list[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    return list(
        ecs.describe_clusters(clusters=["nnote-staging"])["clusters"][0]["capacityProviders"]
    )


def test_adding_the_providers_waits_while_the_cluster_is_still_updating(
    aws_env: dict[str, str], realism: Realism, cluster_updates: ClusterUpdates
) -> None:
    """ECS answers UpdateInProgressException while the cluster applies an earlier change of
    its providers: the call is made again, the cluster read again first, and the wait is
    said through the run's notes."""
    cluster = without_providers()
    cluster_updates.begin("nnote-staging", calls=2)
    run, notes = staging(True), Notes()
    run.progress = notes
    realism.calls.clear()
    capacity.add_providers(run, cluster)
    assert providers() == ["FARGATE", "FARGATE_SPOT"]
    assert len(sent(realism, "PutClusterCapacityProviders")) == 3, "two refused, then done"
    assert len(sent(realism, "DescribeClusters")) == 2, "read again before each retry"
    assert [step for step, _ in notes.said] == ["runtime", "runtime"]
    assert notes.said[0][1].startswith(
        "cluster nnote-staging is still applying an earlier change (UpdateInProgressException); "
    )


def test_a_retry_after_the_providers_were_added_meanwhile_sends_nothing(
    aws_env: dict[str, str], realism: Realism, cluster_updates: ClusterUpdates
) -> None:
    """The update in progress was ours (botocore sent the put again after its answer was lost),
    or added them anyway: once the cluster has them, nothing more is put."""
    cluster = without_providers()
    cluster_updates.begin("nnote-staging", calls=1)
    boto3.client("ecs", region_name=REGION).put_cluster_capacity_providers(
        cluster="nnote-staging",
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[],
    )
    realism.calls.clear()
    capacity.add_providers(staging(True), cluster)
    assert len(sent(realism, "PutClusterCapacityProviders")) == 1, "the refused one only"
    assert providers() == ["FARGATE", "FARGATE_SPOT"]


def test_a_provider_in_use_answer_is_retried_like_an_update_in_progress(
    aws_env: dict[str, str], realism: Realism
) -> None:
    cluster = without_providers()
    fault = FailNth("PutClusterCapacityProviders", 1, code="ResourceInUseException")
    run = staging(True)
    run.aws = make_run("staging", hooks=fault.hooks()).aws
    capacity.add_providers(run, cluster)
    assert fault.fired and providers() == ["FARGATE", "FARGATE_SPOT"]


def test_a_cluster_that_stays_busy_fails_within_the_budget_and_other_errors_at_once(
    aws_env: dict[str, str], realism: Realism, cluster_updates: ClusterUpdates
) -> None:
    cluster = without_providers()
    cluster_updates.begin("nnote-staging", calls=10_000)
    run = staging(True)
    run.dependency_budget_seconds = 0.2
    with pytest.raises(AwsError) as raised:
        capacity.add_providers(run, cluster)
    assert raised.value.code == "UpdateInProgressException"
    assert providers() == []

    fault = FailNth("PutClusterCapacityProviders", 1, code="InvalidParameterException")
    cluster_updates.begin("nnote-staging", calls=0)
    run.aws = make_run("staging", hooks=fault.hooks()).aws
    realism.calls.clear()
    with pytest.raises(AwsError, match="InvalidParameterException"):
        capacity.add_providers(run, cluster)
    assert not sent(realism, "DescribeClusters"), "not retried: waiting cannot fix it"


def stopped(stop_code: str, reason: str, task: str = "abc") -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:eu-west-1:123456789012:task/nnote-staging/{task}",
        "lastStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": reason,
        "containers": [{"name": "app", "exitCode": 143}],
    }


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("SpotInterruption", "Your Spot Task was interrupted."),
        ("TerminationNotice", "Task is being retired: infrastructure maintenance"),
    ],
)
def test_a_spot_interruption_is_not_a_failure_of_the_revision(code: str, reason: str) -> None:
    interrupted = stopped(code, reason)
    assert not failures.is_failure(interrupted)
    crashed = stopped("EssentialContainerExited", "Essential container in task exited")
    assert failures.is_failure(crashed), "a crash on Spot is still a failure"


@pytest.mark.parametrize("spot", [True, False])
def test_a_rollout_with_spot_interruptions_completes(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, spot: bool
) -> None:
    """Every stopped task ECS lists during the rollout was interrupted by Spot (as ECS
    answers with stopCode SpotInterruption): the revision is not judged failed."""
    from deployer.rollout import watch

    interrupted = [
        stopped("SpotInterruption", "Your Spot Task was interrupted.", f"t{n}") for n in range(3)
    ]
    seen: list[int] = []

    def tasks(self: Any, status: str, only_new: bool = False) -> list[dict[str, Any]]:
        seen.append(1)
        return interrupted if status == "STOPPED" else []

    monkeypatch.setattr(watch.Watcher, "_tasks", tasks)
    _, run = up(spot)
    assert seen and run.rollout is not None and run.rollout.completed
    assert run.rollout.failures == []


def test_up_adds_the_providers_to_a_cluster_still_updating(
    aws_env: dict[str, str], realism: Realism, cluster_updates: ClusterUpdates
) -> None:
    """`up` with Spot on a cluster without the providers, while ECS still applies an earlier
    change of them: the runtime step waits it out, then the service moves to Spot."""
    without_providers()
    cluster_updates.begin("nnote-staging", calls=2)
    realism.calls.clear()
    up(True)
    assert len(sent(realism, "PutClusterCapacityProviders")) == 3, "two refused, then done"
    assert providers() == ["FARGATE", "FARGATE_SPOT"] and on_spot()
