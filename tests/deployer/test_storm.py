"""A throttling storm: 30% of all sends answer with the service's throttling error. botocore's
retries (adaptive mode, the deployer's default of 8 attempts) must carry `up` and `down`
through, at a bounded cost in extra requests."""

from __future__ import annotations

import pytest

from deployer import pipeline
from deployer.steps.base import Run
from tests.deployer.conftest import PREBUILT_IMAGE, ROOT, make_run
from tests.deployer.faults import ThrottleStorm, bystanders, snapshot
from tests.deployer.sweep import QuietEvents
from tests.reporting import report

SHARE = 0.3


@pytest.mark.reliability
def test_up_and_down_converge_through_a_throttling_storm(aws_env: dict[str, str]) -> None:
    bystanders()
    before = snapshot()
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    lines = []
    for command, seed in (("up", 1), ("down", 2)):
        storm = ThrottleStorm(SHARE, seed)
        # The CLI's own retry settings (max_attempts=None), not the tests' short ones.
        run = make_run(hooks=storm.hooks(), max_attempts=None, run_id=f"storm-{command}")
        # And the CLI's patience with what AWS still holds (ENIs that linger after a delete):
        # throttled, adaptive-mode retries back off for seconds, and the tests' 5 s budget
        # ran out under load in CI before the realism layer let the subnet go.
        run.dependency_budget_seconds = Run.dependency_budget_seconds
        if command == "up":
            result = pipeline.up(run, QuietEvents(), steps=steps)
            seconds = result.wall_seconds
        else:
            removed = pipeline.down(run, QuietEvents())
            assert removed.leftovers == []
            seconds = sum(removed.timings.values())
        calls = run.aws.log.total
        # Every throttled send is retried once more; a send is never lost or doubled.
        assert storm.sends == calls + storm.throttled
        assert storm.throttled <= calls, "extra requests stay below one per call"
        assert storm.throttled >= 0.15 * calls, "the storm really hit"
        lines.append(
            f"{command:<5} calls {calls:>4}  sends {storm.sends:>4}  throttled "
            f"{storm.throttled:>3} ({storm.throttled / storm.sends:.0%})  "
            f"extra sends per call {storm.throttled / calls:.2f}  {seconds:.1f}s"
        )
        if command == "up":
            assert pipeline.plan(make_run(), steps) == [], "converged despite the storm"
    assert snapshot() == before, "down under the storm left only the bystanders"
    report(f"throttling storm ({SHARE:.0%} of sends throttled)", "\n".join(lines))
