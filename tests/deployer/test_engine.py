"""The engine's parts on moto's in-process mock: graph order and concurrency, journal, lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from deployer.aws import Aws
from deployer.errors import AwsError, LockedError
from deployer.inventory import Owner
from deployer.journal import RunJournal
from deployer.lock import Lock
from deployer.pipeline import StepFailed, run_graph
from deployer.steps.base import Change, Observed, Outputs, Run, Step
from tests.deployer.conftest import REGION, make_run
from tests.deployer.sweep import QuietEvents


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


class FakeStep(Step):
    def __init__(self, name: str, depends_on: tuple[str, ...] = (), action: Any = None) -> None:
        self.name, self.depends_on, self.action = name, depends_on, action

    def observe(self, run: Run) -> Observed:
        return {}

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        return []

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        if self.action:
            self.action(inputs)
        return {"inputs": sorted(inputs)}

    def destroy(self, run: Run, observed: Observed) -> None: ...

    def resources(self, observed: Observed) -> list:  # type: ignore[type-arg]
        return []


def test_independent_steps_run_concurrently(mocked: None) -> None:
    both_running = threading.Barrier(2, timeout=5)  # breaks unless the two overlap
    steps = [
        FakeStep("network"),
        FakeStep("slow-db", ("network",), lambda _i: both_running.wait()),
        FakeStep("registry", (), lambda _i: both_running.wait()),
    ]
    results, timings = run_graph(
        steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents()
    )
    assert "network" in results["slow-db"]["inputs"], "a step gets its dependencies' outputs"
    assert set(timings) == {"network", "slow-db", "registry"}


def test_dependents_wait_and_a_failure_stops_what_has_not_started(mocked: None) -> None:
    started: list[str] = []

    def boom(_inputs: dict[str, Any]) -> None:
        raise AwsError("ec2:create_vpc failed: InternalFailure", "retry", code="InternalFailure")

    steps = [
        FakeStep("network", (), boom),
        FakeStep("database", ("network",), lambda _i: started.append("database")),
    ]
    with pytest.raises(StepFailed) as failed:
        run_graph(steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents())
    assert failed.value.step == "network" and started == []


def test_reverse_order_deletes_dependents_first(mocked: None) -> None:
    order: list[str] = []
    steps = [
        FakeStep("network", (), lambda _i: order.append("network")),
        FakeStep("database", ("network",), lambda _i: order.append("database")),
    ]
    run_graph(steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents(), reverse=True)
    assert order == ["database", "network"]


def test_journal_undoes_newest_first_and_reports_what_it_could_not() -> None:
    journal = RunJournal()
    undone: list[str] = []
    journal.record("network", "created vpc", lambda: undone.append("vpc"))
    journal.record(
        "network", "created subnet", lambda: (_ for _ in ()).throw(RuntimeError("stuck"))
    )
    journal.record("registry", "created repo", lambda: undone.append("repo"))
    report = journal.rollback()
    assert undone == ["repo", "vpc"]
    assert report.undone == ["created repo", "created vpc"]
    assert report.failed == [("created subnet", "RuntimeError: stuck")]


def test_lock_is_exclusive_and_names_its_holder(mocked: None) -> None:
    aws = Aws(region=REGION)
    first = Lock(aws, Owner("nnote", "staging", "run-1"))
    second = Lock(aws, Owner("nnote", "staging", "run-2"))
    other_env = Lock(aws, Owner("nnote", "prod", "run-3"))
    first.acquire()
    with pytest.raises(LockedError, match=r"locked by run run-1 \(.+\) since \d{4}-"):
        second.acquire()
    other_env.acquire()  # environments do not block each other
    second.release()  # not the holder: the lock stays
    with pytest.raises(LockedError):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    other_env.release()


def test_a_live_lock_is_renewed_and_a_dead_one_is_taken_over(mocked: None) -> None:
    import time

    aws = Aws(region=REGION)
    alive = Lock(aws, Owner("nnote", "staging", "run-1"), lease=0.4)
    alive.acquire()
    time.sleep(1.0)  # two and a half leases: renewals keep it held
    with pytest.raises(LockedError, match="locked by run run-1"):
        Lock(aws, Owner("nnote", "staging", "run-2"), lease=0.4).acquire()
    alive._stop.set()  # the holder dies (SIGKILL): no more renewals
    alive._renewer.join()  # type: ignore[union-attr]
    time.sleep(0.5)
    heirs = [Lock(aws, Owner("nnote", "staging", f"heir-{n}"), lease=30) for n in range(4)]
    outcomes: list[object] = []

    def contend(lock: Lock) -> None:
        try:
            outcomes.append(lock.acquire())
        except LockedError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=contend, args=(heir,)) for heir in heirs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Exactly one holds it; usually by takeover (it names the dead run), or, when it came in
    # between another's delete and put, as a plain acquire (None).
    winners = [o for o in outcomes if not isinstance(o, LockedError)]
    assert len(winners) == 1, outcomes
    assert winners[0] is None or winners[0]["run"] == "run-1"  # type: ignore[index]
    assert heirs[0].holder()["run"].startswith("heir-")  # type: ignore[index]
    for heir in heirs:
        heir.release()
    assert heirs[0].holder() is None, "released, and no takeover marker is left"
    names = [p["Name"] for p in aws.client("ssm").describe_parameters()["Parameters"]]
    assert names == []


def test_owner_recognises_only_its_own_tags() -> None:
    owner = Owner("nnote", "staging", "r")
    assert owner.owns(owner.tags("network"))
    assert owner.owns([{"key": t["Key"], "value": t["Value"]} for t in owner.tags("x")])
    assert not owner.owns(Owner("nnote", "prod", "r").tags("network"))
    assert not owner.owns(Owner("other", "staging", "r").tags("network"))
    assert not owner.owns(
        [{"Key": "nnote:app", "Value": "nnote"}, {"Key": "nnote:env", "Value": "staging"}]
    )
    assert not owner.owns(None)
