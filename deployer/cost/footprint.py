"""What an environment is billed for, as counts and sizes: no prices here.

`wanted` reads it from deploy.toml, as `up` would create it; `deployed` from what `plan`
observed (the facts the steps already read: task definition, service, scaling target, load
balancer, database, registry, secrets, alarms, distribution), so that a converged environment
has the same footprint as its settings and `plan` asks for no price at all. `planned` is what
`up` leaves: the settings, except what `up` never changes on a database that exists (its
storage and engine lifecycle).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from deployer import capacity
from deployer.config import PAST_STANDARD_SUPPORT, DeployConfig
from deployer.steps.loadbalancer import PUBLIC_IPV6_ONLY

EXTENDED_SUPPORT = "open-source-rds-extended-support"
# CloudWatch bills alarms per metric they read: target tracking makes two alarms of one metric
# each (scale out, scale in); the rollout alarms read three (the 5xx share divides two).
SCALING_ALARM_METRICS = 2
ROLLOUT_ALARM_METRICS = 3


@dataclass(frozen=True)
class Tasks:
    """The Fargate service: `count` tasks run at the baseline (the autoscaler's minimum when
    it is on), up to `most`."""

    count: int
    most: int
    vcpu: float
    memory_gb: float
    public_ip: bool = True  # tasks run in the public subnets, one public IPv4 address each
    spot: bool = False  # on Fargate Spot (`service.spot`; deployed: the service's strategy)


@dataclass(frozen=True)
class Database:
    instance_class: str
    multi_az: bool
    storage_gb: int
    storage_type: str  # gp3 for what `up` creates (RDS's default); older instances gp2
    backup_days: int
    snapshots_kept: int  # manual snapshots before migrations, kept by the deployer
    extended_support_vcpus: int  # vCPUs billed for RDS Extended Support (0: none)


@dataclass(frozen=True)
class Footprint:
    tasks: Tasks | None
    load_balancer_zones: int  # one ALB node, and one public IPv4 address, per zone (0: none)
    database: Database | None
    images_kept: int
    secrets: int
    alarm_metrics: int
    cloudfront: bool
    # A load balancer with public IPv4 addresses has one per zone; behind CloudFront it has
    # public IPv6 addresses only (steps/loadbalancer.py), which AWS does not bill.
    public_load_balancer: bool = True

    def keeping(self, deployed: Footprint) -> Footprint:
        """These settings as `up` applies them over `deployed`: a database that exists keeps
        its storage and engine lifecycle (`up` changes neither)."""
        if self.database is None or deployed.database is None:
            return self
        kept = replace(
            self.database,
            storage_gb=deployed.database.storage_gb,
            storage_type=deployed.database.storage_type,
            extended_support_vcpus=deployed.database.extended_support_vcpus,
        )
        return replace(self, database=kept)


def wanted(config: DeployConfig) -> Footprint:
    """The environment deploy.toml describes, as `up` creates it."""
    settings = config.settings
    service, scaling = settings.service, settings.service.autoscaling
    count = scaling.min_tasks if scaling else service.desired_count
    return Footprint(
        tasks=Tasks(
            count=count,
            most=scaling.max_tasks if scaling else count,
            vcpu=service.cpu / 1024,
            memory_gb=service.memory_mb / 1024,
            spot=service.spot,
        ),
        load_balancer_zones=len(settings.network.public_subnets),
        database=_wanted_database(config),
        images_kept=settings.registry.keep_images,
        secrets=2,  # the RDS-managed master password and the app's SECRET_KEY
        alarm_metrics=(ROLLOUT_ALARM_METRICS if service.rollout.alarms else 0)
        + (SCALING_ALARM_METRICS if scaling else 0),
        cloudfront=service.behind_cloudfront,
        public_load_balancer=not service.behind_cloudfront,
    )


def _wanted_database(config: DeployConfig) -> Database:
    db = config.settings.db
    extended = db.extended_support and db.engine_version[:3] in PAST_STANDARD_SUPPORT
    return Database(
        instance_class=db.instance_class,
        multi_az=db.multi_az,
        storage_gb=db.allocated_storage_gb,
        storage_type="gp3",
        backup_days=db.backup_retention_days,
        snapshots_kept=db.snapshots_keep if db.snapshot_before_migrate else 0,
        extended_support_vcpus=vcpus(db.instance_class) if extended else 0,
    )


def deployed(config: DeployConfig, observed: dict[str, Any]) -> Footprint:
    """What exists, from `plan`'s observations (by step name). What no step reads (snapshots
    kept) is taken from the settings."""
    service_step = observed.get("service") or {}
    database = (observed.get("database") or {}).get("instance")
    if database and database.get("DBInstanceStatus") == "deleting":
        database = None
    secrets = int(bool((observed.get("runtime") or {}).get("secret")))
    secrets += int(bool(database and database.get("MasterUserSecret")))
    lb = (observed.get("loadbalancer") or {}).get("lb")
    return Footprint(
        tasks=_deployed_tasks(service_step),
        load_balancer_zones=len(lb.get("AvailabilityZones") or []) if lb else 0,
        database=_deployed_database(config, database) if database else None,
        images_kept=_images_kept(config, observed.get("registry") or {}),
        secrets=secrets,
        alarm_metrics=sum(map(_metrics_read, (service_step.get("alarms") or {}).values()))
        + (SCALING_ALARM_METRICS if service_step.get("scaling") else 0),
        cloudfront=bool((observed.get("endpoint") or {}).get("distribution")),
        public_load_balancer=lb is not None and lb.get("IpAddressType") != PUBLIC_IPV6_ONLY,
    )


def _deployed_tasks(observed: dict[str, Any]) -> Tasks | None:
    service, task = observed.get("service"), observed.get("task_definition")
    if not service or not task:
        return None
    scaling = observed.get("scaling")
    count = scaling["MinCapacity"] if scaling else service.get("desiredCount", 0)
    network = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    return Tasks(
        count=int(count),
        most=int(scaling["MaxCapacity"]) if scaling else int(count),
        vcpu=int(task["cpu"]) / 1024,
        memory_gb=int(task["memory"]) / 1024,
        public_ip=network.get("assignPublicIp", "ENABLED") == "ENABLED",
        spot=capacity.on_spot(service),
    )


def _deployed_database(config: DeployConfig, instance: dict[str, Any]) -> Database:
    version = str(instance.get("EngineVersion", ""))
    extended = (
        instance.get("EngineLifecycleSupport") == EXTENDED_SUPPORT
        and version[:3] in PAST_STANDARD_SUPPORT
    )
    db = config.settings.db
    return Database(
        instance_class=instance["DBInstanceClass"],
        multi_az=bool(instance.get("MultiAZ")),
        storage_gb=int(instance.get("AllocatedStorage", db.allocated_storage_gb)),
        storage_type=str(instance.get("StorageType", "gp3")),
        backup_days=int(instance.get("BackupRetentionPeriod", 0)),
        snapshots_kept=db.snapshots_keep if db.snapshot_before_migrate else 0,
        extended_support_vcpus=vcpus(instance["DBInstanceClass"]) if extended else 0,
    )


def _metrics_read(alarm: dict[str, Any]) -> int:
    """The metrics an alarm reads: its own, or those its metric math divides or adds."""
    return sum(1 for m in alarm.get("Metrics") or [] if m.get("MetricStat")) or 1


def _images_kept(config: DeployConfig, registry: dict[str, Any]) -> int:
    if not registry.get("repo"):
        return 0
    rules = (registry.get("policy") or {}).get("rules") or [{}]
    kept = rules[0].get("selection", {}).get("countNumber")
    return int(kept) if kept else config.settings.registry.keep_images


def vcpus(instance_class: str) -> int:
    """The vCPUs of an RDS instance class (db.FAMILY.SIZE): burstable classes up to large have
    2; otherwise large is 2, xlarge 4 and NxLarge 4N (medium 1)."""
    size = instance_class.rsplit(".", 1)[-1]
    burstable = instance_class.split(".")[1].startswith("t")
    if size in ("micro", "small", "medium", "large") and burstable:
        return 2
    if size == "medium":
        return 1
    if size == "large":
        return 2
    multiple = size.removesuffix("xlarge")
    return 4 * int(multiple or 1)
