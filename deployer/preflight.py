"""Pre-flight checks: what would stop `up` half-way on a real account, found before anything
is created.

A first `up` in a new account fails late and expensively on a quota, a database class the
region does not sell, or zones where Fargate does not run: after the slow RDS creation, and
followed by a rollback. These checks ask first. `nnote-deploy verify` runs them all; `up`
runs those its plan needs (a converged environment needs none, and makes no extra call).
Each failed check names its fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deployer import boundary, dns
from deployer.aws import absent, call, paginate
from deployer.errors import DeployError
from deployer.steps.base import Change, Run
from deployer.steps.database import engine_version
from deployer.steps.image import ImageStep, build_args, prebuilt_image
from deployer.steps.network import cloudfront_prefix_list, fargate_zones

# Service Quotas codes (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html).
VPCS = ("vpc", "L-F678F1CE", "VPCs per Region")
ALBS = ("elasticloadbalancing", "L-53DA6B97", "Application Load Balancers per Region")
FARGATE_VCPUS = ("fargate", "L-3032A538", "Fargate On-Demand vCPU resource count")
QUOTA_MISSING = ("NoSuchResourceException",)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Probe:
    """One check, and the planned changes that make `up` need it."""

    name: str
    needed_for: tuple[str, ...]  # change types ("ec2:vpc") whose creation needs it
    check: Callable[[Run, ImageStep | None], Check]
    actions: tuple[str, ...] = ("create",)  # the changes of those types that need it

    def needed(self, changes: list[Change]) -> bool:
        return any(c.action in self.actions and c.type in self.needed_for for c in changes)


class PreflightFailed(DeployError):
    """A check failed before anything was created."""

    def __init__(self, failed: list[Check]) -> None:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        super().__init__(
            f"pre-flight check failed, nothing was created: {failed[0].name}: "
            f"{failed[0].detail}{more}",
            failed[0].fix,
        )
        self.problems = [f"{c.name}: {c.detail}; {c.fix}" for c in failed]


def run_all(run: Run, image: ImageStep | None, probes: list[Probe] | None = None) -> list[Check]:
    return [_guarded(probe, run, image) for probe in (PROBES if probes is None else probes)]


def for_changes(run: Run, changes: list[Change], image: ImageStep | None) -> None:
    """The checks `up`'s plan needs; raises PreflightFailed naming every one that failed."""
    checks = run_all(run, image, [p for p in PROBES if p.needed(changes)])
    failed = [check for check in checks if not check.ok]
    if failed:
        raise PreflightFailed(failed)


def _guarded(probe: Probe, run: Run, image: ImageStep | None) -> Check:
    """A check that cannot run (a permission, a network error, Docker) fails with the reason."""
    try:
        return probe.check(run, image)
    except DeployError as error:
        return Check(probe.name, False, error.message, error.hint)
    except Exception as error:  # the Docker SDK and the file system raise their own
        return Check(probe.name, False, f"{type(error).__name__}: {error}", "run verify --verbose")


# -- quotas ---------------------------------------------------------------------------------


def quota(run: Run, service: str, code: str) -> float | None:
    """The account's applied quota, else AWS's default for it; None if neither is known."""
    for operation in ("get_service_quota", "get_aws_default_service_quota"):
        found = absent(
            run.aws, "service-quotas", operation, QUOTA_MISSING, ServiceCode=service, QuotaCode=code
        )
        if found:
            return float(found["Quota"]["Value"])
    return None


def _quota_check(
    run: Run, which: tuple[str, str, str], used: float | None, needed: float, unit: str = ""
) -> Check:
    """`used` None: AWS has no count of it (Fargate vCPUs in use): the need is compared alone."""
    service, code, name = which
    limit = quota(run, service, code)
    if limit is None:
        return Check(f"quota: {name}", True, f"not readable; up needs {needed:g}{unit}")
    if used is None:
        detail = f"{limit:g}{unit}; up needs up to {needed:g}{unit} (what else runs is not counted)"
    else:
        detail = f"{used:g}{unit} of {limit:g}{unit} used; up needs {needed:g}{unit} more"
    return Check(
        f"quota: {name}",
        (used or 0) + needed <= limit,
        detail,
        f"ask for more in Service Quotas ({service} {code}) or free some up",
    )


def _vpcs(run: Run, _image: ImageStep | None) -> Check:
    """Every VPC counts (the default one too); an environment whose VPC exists already (a
    preview pushed to again) needs none more."""
    vpcs = paginate(run.aws, "ec2", "describe_vpcs", "Vpcs")
    has_own = any(run.owner.owns(vpc.get("Tags")) for vpc in vpcs)
    return _quota_check(run, VPCS, len(vpcs), 0 if has_own else 1)


def _load_balancers(run: Run, _image: ImageStep | None) -> Check:
    found = paginate(run.aws, "elbv2", "describe_load_balancers", "LoadBalancers")
    used = sum(1 for lb in found if lb.get("Type") == "application")
    return _quota_check(run, ALBS, used, 1)


def _fargate_vcpus(run: Run, _image: ImageStep | None) -> Check:
    """During a rolling deploy both revisions run: twice the tasks at the peak."""
    service = run.config.settings.service
    tasks = service.autoscaling.max_tasks if service.autoscaling else service.desired_count
    return _quota_check(run, FARGATE_VCPUS, None, 2 * tasks * service.cpu / 1024, " vCPU")


def _database_instances(run: Run, _image: ImageStep | None) -> Check:
    quotas = call(run.aws, "rds", "describe_account_attributes")["AccountQuotas"]
    found = next((q for q in quotas if q["AccountQuotaName"] == "DBInstances"), None)
    if found is None:
        return Check("quota: RDS DB instances", True, "not readable; up needs 1")
    return Check(
        "quota: RDS DB instances",
        found["Used"] + 1 <= found["Max"],
        f"{found['Used']} of {found['Max']} used; up needs 1 more",
        "ask for more in Service Quotas (rds L-7B6409FD) or delete unused instances",
    )


def _elastic_ips(_run: Run, _image: ImageStep | None) -> Check:
    return Check(
        "quota: Elastic IP addresses",
        True,
        "none needed: tasks and the load balancer get AWS-assigned public IPs (no NAT gateway)",
    )


# -- what the region offers -----------------------------------------------------------------


def _zones(run: Run, _image: ImageStep | None) -> Check:
    zones = fargate_zones(run)
    return Check("zones where Fargate runs", True, ", ".join(zones))


def _database_offered(run: Run, _image: ImageStep | None) -> Check:
    db = run.config.settings.db
    version = engine_version(run)
    options = paginate(
        run.aws,
        "rds",
        "describe_orderable_db_instance_options",
        "OrderableDBInstanceOptions",
        Engine="mysql",
        EngineVersion=version,
        DBInstanceClass=db.instance_class,
        Vpc=True,
    )
    if db.multi_az:
        options = [o for o in options if o.get("MultiAZCapable")]
    zones = sorted({z["Name"] for o in options for z in o.get("AvailabilityZones", [])})
    name = f"database: MySQL {version} on {db.instance_class}" + (
        " Multi-AZ" if db.multi_az else ""
    )
    if not zones:
        return Check(
            name,
            False,
            f"not offered in {run.aws.region}",
            "choose another db.instance_class (aws rds describe-orderable-db-instance-options)",
        )
    return Check(name, True, f"offered in {', '.join(zones)}")


# -- what bootstrap makes -------------------------------------------------------------------


def _boundary(run: Run, _image: ImageStep | None) -> Check:
    """The environment's boundary: a preview's roles get the previews' own (boundary.py)."""
    preview = run.config.preview
    arn = boundary.arn(run.aws, run.config.app, preview)
    name = boundary.name_for(run.config.app, preview)
    found = absent(run.aws, "iam", "get_policy", ("NoSuchEntity",), PolicyArn=arn)
    if found:
        return Check("permissions boundary of task roles", True, name)
    command = "bootstrap --preview-env preview" if preview else "bootstrap"
    return Check(
        "permissions boundary of task roles",
        False,
        f"the IAM policy {name} does not exist: the deploy role may create roles only with it",
        f"run `nnote-deploy {command}` once as an administrator (it makes it)",
    )


# -- the image ------------------------------------------------------------------------------


def _docker(_run: Run, image: ImageStep | None) -> Check:
    if image is None or image.prebuilt:
        return Check("Docker engine", True, "not needed: a prebuilt image is deployed")
    return Check("Docker engine", True, f"version {image.engine.version()}")


def _base_image(run: Run, image: ImageStep | None) -> Check:
    """What the image to deploy needs: its base image for a build; a prebuilt one in this
    account's ECR must be there (the image step's plan checks it again before `up` changes
    anything)."""
    if image is not None and image.prebuilt:
        try:
            return Check("prebuilt image", True, prebuilt_image(run, image.prebuilt))
        except DeployError as error:
            return Check("prebuilt image", False, error.message, error.hint)
    if image is None:
        return Check("image base", True, "not needed: no image is deployed")
    base = build_args(run).get("BASE_IMAGE") or dockerfile_default_base(image.source)
    if image.engine.image_available(base):
        return Check("image base", True, base)
    return Check(
        "image base",
        False,
        f"{base} is neither local nor reachable in its registry",
        "docker pull it, log in to its registry, or set image.build_args.BASE_IMAGE to a mirror",
    )


def _front_door(run: Run, _image: ImageStep | None) -> Check:
    """What HTTPS needs: the domain's hosted zone, or CloudFront's prefix list here."""
    service = run.config.settings.service
    if service.domain:
        zone = dns.find_zone(run.aws, service.domain, service.hosted_zone)
        if zone is None:
            error = dns.no_zone(service.domain, service.hosted_zone)
            return Check("HTTPS", False, error.message, error.hint)
        return Check("HTTPS", True, f"{service.domain} in hosted zone {zone['Name']}")
    if service.certificate_arn:
        return Check("HTTPS", True, "the load balancer serves service.certificate_arn")
    prefix_list = cloudfront_prefix_list(run)  # raises with its fix where there is none
    return Check("HTTPS", True, f"CloudFront in front; the load balancer admits {prefix_list}")


def dockerfile_default_base(source: Path) -> str:
    text = (source / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M)
    return found.group(1) if found else "python:3.12-slim"


PROBES = [
    Probe("quota: VPCs per Region", ("ec2:vpc",), _vpcs),
    Probe("quota: Elastic IP addresses", (), _elastic_ips),
    Probe("quota: Application Load Balancers", ("elbv2:loadbalancer",), _load_balancers),
    Probe("quota: Fargate vCPU", ("ecs:service",), _fargate_vcpus),
    Probe("quota: RDS DB instances", ("rds:db",), _database_instances),
    Probe("zones where Fargate runs", ("ec2:subnet",), _zones),
    Probe("database offered", ("rds:db",), _database_offered),
    Probe("permissions boundary", ("iam:role",), _boundary, ("create", "update")),
    Probe("Docker engine", ("image",), _docker),
    Probe("image base", ("image",), _base_image),
    Probe("HTTPS", ("cloudfront:distribution", "acm:certificate"), _front_door),
]


def image_step(steps: Iterable[object]) -> ImageStep | None:
    return next((s for s in steps if isinstance(s, ImageStep)), None)
