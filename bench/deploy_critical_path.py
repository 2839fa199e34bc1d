"""`up` from nothing with simulated AWS latencies: does it take the critical path, not the sum?

    uv run python bench/deploy_critical_path.py [--scale 0.02] [--runs 3]

A moto server plays AWS; botocore after-call hooks make RDS report `creating` for 300 s, the
ECS rollout report IN_PROGRESS for 60 s after creation and a new CloudFront distribution
`InProgress` for 300 s (AWS: "within 5 minutes"), all scaled by --scale. A prebuilt image is
deployed behind a simulated 150 s build, which must overlap RDS creation.
Each run deploys twice from nothing: the default (HTTPS through CloudFront) and, as the
baseline, HTTPS on the load balancer alone (a certificate of the user's, no CloudFront), so
the figure "CloudFront adds" is what the default front door costs `up` in wall time.
"wall" is the apply phase (after the read-only plan, which is reported by `up` separately).
Prints, per run and as medians: wall time, critical path (longest chain of dependent
steps), sum of step times, and wall / critical path. Target: wall within 10% of the path.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The emulator as the tests see it: AWS's rules that moto skips, and the IAM policy.
from tests.support.realism import RealisticMotoServer, bootstrap_account  # noqa: E402

RDS_SECONDS, ECS_SECONDS, BUILD_SECONDS, CLOUDFRONT_SECONDS = 300.0, 60.0, 150.0, 300.0
IMAGE = "127.0.0.1:5000/nnote-staging@sha256:" + "0" * 64


class Latencies:
    """Makes RDS and ECS slow the way real AWS is, by editing moto's answers."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.created: dict[str, float] = {}

    def hooks(self) -> list[tuple[str, Any]]:
        return [
            ("after-call.rds.CreateDBInstance", self._mark("rds")),
            ("after-call.ecs.CreateService", self._mark("ecs")),
            ("after-call.cloudfront.CreateDistributionWithTags", self._mark("cloudfront")),
            ("after-call.cloudfront.GetDistribution", self._cloudfront),
            ("after-call.rds.DescribeDBInstances", self._rds),
            ("after-call.ecs.DescribeServices", self._ecs),
        ]

    def _mark(self, what: str) -> Any:
        def mark(**_: Any) -> None:
            self.created[what] = time.monotonic()

        return mark

    def _pending(self, what: str, seconds: float) -> bool:
        return what in self.created and time.monotonic() - self.created[what] < seconds * self.scale

    def _rds(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._pending("rds", RDS_SECONDS):
            for instance in parsed.get("DBInstances", []):
                instance["DBInstanceStatus"] = "creating"
                instance.pop("Endpoint", None)

    def _cloudfront(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._pending("cloudfront", CLOUDFRONT_SECONDS) and "Distribution" in parsed:
            parsed["Distribution"]["Status"] = "InProgress"

    def _ecs(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._pending("ecs", ECS_SECONDS):
            for service in parsed.get("services", []):
                for deployment in service.get("deployments", []):
                    deployment["rolloutState"] = "IN_PROGRESS"


def one_run(
    endpoint: str, scale: float, certificate: bool = False
) -> tuple[float, float, float, float]:
    from deployer import pipeline
    from deployer.aws import Aws
    from deployer.config import load
    from deployer.inventory import Owner
    from deployer.steps.base import Run, SilentProgress

    class Quiet(SilentProgress):
        def step_started(self, step: str) -> None: ...
        def step_finished(self, step: str, seconds: float) -> None: ...
        def step_failed(self, step: str, seconds: float, message: str) -> None: ...
        def undoing(self, entry: object) -> None: ...

    from deployer.steps.image import ImageStep

    class SlowBuild(ImageStep):
        """A build as long as a real one from a cold cache; it needs nothing from RDS."""

        def apply(self, run: Run, inputs: dict[str, Any]) -> dict[str, Any]:
            run.sleep(BUILD_SECONDS * scale)
            return super().apply(run, inputs)

    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    bootstrap_account(endpoint)  # as `nnote-deploy bootstrap` leaves an account
    config = load(ROOT / "deploy.toml", "staging")
    if certificate:  # the baseline: the user's certificate on the load balancer
        acm = boto3.client(
            "acm",
            region_name="eu-west-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",  # the emulator's own key: not held to the policy
            aws_secret_access_key="testing",
        )
        arn = acm.request_certificate(DomainName="bench.example.com")["CertificateArn"]
        service = config.settings.service.model_copy(update={"certificate_arn": arn})
        settings = config.settings.model_copy(update={"service": service})
        config = config.model_copy(update={"settings": settings})
    run = Run(
        aws=Aws(region="eu-west-1", hooks=Latencies(scale).hooks()),
        config=config,
        owner=Owner(config.app, "staging", "bench"),
        poll_seconds=0.05,
    )
    steps = [
        SlowBuild(ROOT, prebuilt=IMAGE) if s.name == "image" else s
        for s in pipeline.deploy_steps(ROOT, IMAGE)
    ]
    result = pipeline.up(run, Quiet(), steps=steps)
    apply_wall = result.wall_seconds - result.plan_seconds
    return apply_wall, result.critical_seconds, sum(result.timings.values()), result.plan_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        MOTO_ECS_SERVICE_RUNNING="1",
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = RealisticMotoServer()
    os.environ["AWS_ENDPOINT_URL"] = server.start()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    results, baseline = [], []
    try:
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            results.append(one_run(endpoint, args.scale))
            baseline.append(one_run(endpoint, args.scale, certificate=True))
    finally:
        server.stop()
    print(
        f"simulated (scale {args.scale}): RDS {RDS_SECONDS * args.scale:.1f}s, "
        f"ECS rollout {ECS_SECONDS * args.scale:.1f}s, "
        f"image build {BUILD_SECONDS * args.scale:.1f}s, "
        f"CloudFront deployment {CLOUDFRONT_SECONDS * args.scale:.1f}s"
    )
    for wall, critical, total, planned in results:
        print(
            f"run: plan {planned:.2f}s, then wall {wall:.2f}s, critical path {critical:.2f}s, "
            f"sum {total:.2f}s"
        )
    wall, critical, total = (statistics.median(r[i] for r in results) for i in range(3))
    print(
        f"median: wall {wall:.2f}s, critical path {critical:.2f}s, sum {total:.2f}s, "
        f"wall/critical {wall / critical:.2f} (target <= 1.10), sum/wall {total / wall:.2f}"
    )
    alone = statistics.median(r[0] for r in baseline)
    print(
        f"baseline without CloudFront: median wall {alone:.2f}s; CloudFront adds "
        f"{wall - alone:+.2f}s ({wall / alone:.2f}x; its deployment overlaps RDS and the rollout)"
    )


if __name__ == "__main__":
    main()
