"""The fault sweep: every mutating call of `up`, `down` and `redeploy` fails in turn, as a
modeled ClientError, an HTTP 500 and a dropped connection (tests/deployer/sweep.py says how
each case is judged). The full sweep is marked `reliability`: scripts/reliability and the
nightly workflow run it; every suite run has the sample."""

from __future__ import annotations

import pytest

from tests.deployer import sweep
from tests.deployer.faults import FAULT_KINDS
from tests.reporting import report


def test_a_sample_of_each_command_survives_a_client_error(aws_env: dict[str, str]) -> None:
    """The fast subset: every eighth call of each command, on this session's moto server."""
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    for command in sweep.COMMANDS:
        cases = sweep.calls_sample(command, endpoint, every=8)
        assert cases, command
        failures = sweep.run_cases(command, "client-error", endpoint, cases).failures
        assert failures == [], "\n".join(failures)


@pytest.mark.reliability
# ~200 cases: ~250 s on two idle cores, over 300 s when the shared machine is slow.
@pytest.mark.timeout(900)
def test_full_fault_sweep_survives_everything() -> None:
    results = sweep.sweep_all()
    report("fault sweep (every mutating call failed in turn)", sweep.table(results))
    assert {(r.command, r.kind) for r in results} == {
        (c, k) for c in sweep.COMMANDS for k in FAULT_KINDS
    }
    assert sum(r.swept for r in results if r.command == "up") >= 3 * 30
    failures = [f"{r.command}/{r.kind}: {f}" for r in results for f in r.failures]
    assert failures == [], "\n".join(failures)
    assert all(r.survived == r.swept and r.leaked == 0 for r in results)
