"""deploy.toml: schema, defaults, per-environment overrides, and validation.

The file has `app`, `region`, a `[defaults]` table and `[env.NAME]` tables whose keys
override the defaults for that environment. A `[preview]` table is the template of every
pull request's preview environment: `pr-<N>` not named under `[env]` is defaults + preview,
less what a preview cannot have (a domain, a certificate, autoscaling: NOT_FOR_PREVIEWS).
Everything is validated before any AWS call: every bad field is reported at once, as
`path: reason`, and unknown keys are errors.
"""

from __future__ import annotations

import ipaddress
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deployer.errors import ConfigError
from deployer.validation import (
    check_region_option,
    did_you_mean,
    instance_class_problem,
    region_problem,
)

# Lowercase (ECR), a letter first and no "--" (RDS identifiers), no hyphen at the end (ELB).
NAME_PATTERN = r"^[a-z](?:-?[a-z0-9])+$"
NAME_RULE = "2-22 lowercase letters, digits and single hyphens, starting with a letter"
# A lowercase DNS name of two labels or more, without the trailing dot (notes.example.com).
DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
# A pull request's preview environment: `pr-` and the PR's number (no leading zero).
PREVIEW_PATTERN = r"^pr-[1-9][0-9]*$"
# `APP-ENV` names the load balancer and the target group, which AWS caps at 32 characters.
LONGEST_PREFIX = 32

# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
FARGATE_MEMORY: dict[int, range | tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
# RDS for MySQL 8.0 left standard support on 2026-07-31; creating it since then enrolls the
# instance in paid Extended Support (about $0.10 per vCPU-hour on top of the instance).
PAST_STANDARD_SUPPORT = {"8.0": "2026-07-31"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSettings(Section):
    vpc_cidr: str = "10.40.0.0/16"
    public_subnets: tuple[str, str] = ("10.40.0.0/24", "10.40.1.0/24")
    availability_zones: tuple[str, str] | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, value: str) -> str:
        network = _network(value)
        if not 16 <= network.prefixlen <= 24:
            raise ValueError("a VPC block must be between /16 and /24")
        return value

    @field_validator("public_subnets")
    @classmethod
    def _subnets(cls, value: tuple[str, str]) -> tuple[str, str]:
        first, second = (_network(cidr) for cidr in value)
        if first.overlaps(second):
            raise ValueError(f"{value[0]} and {value[1]} overlap")
        return value

    @model_validator(mode="after")
    def _subnets_inside_vpc(self) -> NetworkSettings:
        vpc = _network(self.vpc_cidr)
        for cidr in self.public_subnets:
            if not _network(cidr).subnet_of(vpc):
                raise ValueError(f"public_subnets: {cidr} is not inside vpc_cidr {self.vpc_cidr}")
        return self


def _network(cidr: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as error:
        raise ValueError(f"{cidr!r} is not an IPv4 CIDR block ({error})") from None


class DatabaseSettings(Section):
    # A major version takes the region's default minor version when the instance is created.
    engine_version: str = Field("8.4", pattern=r"^8\.(0|4)(\.\d+)?$")
    # db.FAMILY.SIZE; a close typo of a known class is refused with the class it meant.
    instance_class: str = "db.t4g.micro"
    allocated_storage_gb: int = Field(20, ge=20, le=16384)
    backup_retention_days: int = Field(7, ge=0, le=35)
    multi_az: bool = False
    deletion_protection: bool = False
    final_snapshot: bool = False
    # A manual snapshot, taken and waited for, before a release migrates the schema; the
    # newest `snapshots_keep` of them are kept (`down` deletes them only when asked).
    snapshot_before_migrate: bool = False
    snapshots_keep: int = Field(3, ge=1, le=100)
    name: str = Field("nnote", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    username: str = Field("nnote", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
    # Paid RDS Extended Support, needed for a major version past standard support.
    extended_support: bool = False

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, value: str) -> str:
        return _unless(instance_class_problem(value), value)

    @model_validator(mode="after")
    def _supported_version(self) -> DatabaseSettings:
        major = self.engine_version[:3]
        if major in PAST_STANDARD_SUPPORT and not self.extended_support:
            raise ValueError(
                f"engine_version: MySQL {major} left RDS standard support on "
                f"{PAST_STANDARD_SUPPORT[major]}; use 8.4, or set extended_support = true "
                "to pay for RDS Extended Support"
            )
        return self


class RegistrySettings(Section):
    keep_images: int = Field(10, ge=1, le=1000)
    scan_on_push: bool = True
    push_host: str | None = None


class ImageSettings(Section):
    # Extra `docker build` arguments, e.g. BASE_IMAGE for a mirror of python:3.12-slim.
    # Never put a secret here: build arguments stay in the image history.
    build_args: dict[str, str] = {}


class AutoscalingSettings(Section):
    min_tasks: int = Field(1, ge=1, le=100)
    max_tasks: int = Field(4, ge=1, le=100)
    cpu_target: int = Field(60, ge=10, le=90)

    @model_validator(mode="after")
    def _range(self) -> AutoscalingSettings:
        if self.max_tasks < self.min_tasks:
            raise ValueError("max_tasks must be at least min_tasks")
        return self


class RolloutSettings(Section):
    """How fast a new revision replaces the old one, and when it is judged failed. Defaults
    follow AWS's guidance for fast ECS deployments; every bound is the API's own."""

    # The load balancer asks /readyz every 5 s (the API's minimum); a new target serves after
    # one passing check, a serving one is pulled after 2 failures (10 s).
    health_check_interval_seconds: int = Field(5, ge=5, le=300)
    health_check_timeout_seconds: int = Field(4, ge=2, le=120)
    healthy_threshold: int = Field(2, ge=2, le=10)
    unhealthy_threshold: int = Field(2, ge=2, le=10)
    # The app's requests take milliseconds (gunicorn's own limit is 30 s): 5 s drains them.
    deregistration_delay_seconds: int = Field(5, ge=0, le=3600)
    # ECS ignores failing load-balancer checks this long after a task starts (the app
    # migrates its schema first). It never delays a healthy task.
    grace_period_seconds: int = Field(30, ge=0, le=2147483647)
    # SIGTERM to SIGKILL. Targets are drained before ECS stops a task, so gunicorn has
    # nothing in flight and exits at once; Fargate allows 120 at most.
    stop_timeout_seconds: int = Field(10, ge=2, le=120)
    # Start the new tasks beside the old ones (200%) and keep full capacity serving (100%).
    minimum_healthy_percent: int = Field(100, ge=0, le=100)
    maximum_percent: int = Field(200, ge=100, le=400)
    # Judge a revision failed after this many of its tasks failed; unset is ECS's own
    # circuit-breaker threshold: half the desired count, at least 3, at most 200.
    fail_after_failed_tasks: int | None = Field(None, ge=1, le=200)
    # CloudWatch alarms on the target group that make ECS roll a revision back when it starts
    # but serves errors or is slow (deploymentConfiguration.alarms); $0.10 a month each.
    alarms: bool = False
    alarm_5xx_percent: float = Field(1.0, gt=0, le=100)
    alarm_p95_seconds: float = Field(1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> RolloutSettings:
        if self.health_check_timeout_seconds >= self.health_check_interval_seconds:
            raise ValueError(
                "health_check_timeout_seconds must be less than health_check_interval_seconds "
                "(an Elastic Load Balancing rule)"
            )
        if self.maximum_percent <= self.minimum_healthy_percent:
            raise ValueError(
                "maximum_percent must be above minimum_healthy_percent: with no room to start "
                "a new task beside the old ones, nor to stop one, a rollout never moves"
            )
        return self


class ServiceSettings(Section):
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 256
    memory_mb: int = Field(512, ge=512, le=122880)
    desired_count: int = Field(1, ge=0, le=100)
    container_port: int = Field(5000, ge=1024, le=65535)
    health_check_path: str = Field("/readyz", pattern=r"^/[\w./-]*$")
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 180, 365] = 30
    # The service's tasks on Fargate Spot (about 70% less; interrupted with two minutes'
    # warning, and no fallback to on-demand when Spot has no capacity). One-off tasks (the
    # migration) always run on demand.
    spot: bool = False
    # HTTPS: with neither, a CloudFront distribution in front of the load balancer gives the
    # environment an https://*.cloudfront.net URL; with a domain, an ACM certificate for it
    # (validated through the Route 53 hosted zone) on the load balancer and an alias record.
    domain: str | None = Field(None, pattern=DOMAIN_PATTERN, max_length=253)
    hosted_zone: str | None = Field(None, pattern=DOMAIN_PATTERN, max_length=253)
    certificate_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$"
    )
    certificate_timeout_seconds: int = Field(1800, ge=60, le=72 * 3600)
    rollout_timeout_seconds: int = Field(900, ge=60, le=7200)
    rollout: RolloutSettings = RolloutSettings()  # type: ignore[call-arg]
    autoscaling: AutoscalingSettings | None = None

    @model_validator(mode="after")
    def _fargate_size(self) -> ServiceSettings:
        offered = FARGATE_MEMORY[self.cpu]
        if self.memory_mb not in offered:
            sizes = (
                f"{offered.start}-{offered.stop - 1} MiB in steps of {offered.step}"
                if isinstance(offered, range)
                else ", ".join(map(str, offered)) + " MiB"
            )
            raise ValueError(
                f"memory_mb: Fargate offers {self.cpu} CPU units with {sizes}, not {self.memory_mb}"
            )
        return self

    @model_validator(mode="after")
    def _zone_holds_domain(self) -> ServiceSettings:
        if self.hosted_zone and not self.domain:
            raise ValueError("hosted_zone: set domain too (the zone is where its records go)")
        if self.domain and self.hosted_zone and not _inside(self.domain, self.hosted_zone):
            raise ValueError(f"hosted_zone: {self.domain} is not inside {self.hosted_zone}")
        return self

    @property
    def behind_cloudfront(self) -> bool:
        return self.front == "cloudfront"

    @property
    def front(self) -> Literal["cloudfront", "load-balancer"]:
        """Who terminates HTTPS: CloudFront's default certificate without a domain or
        certificate of the user's, else the load balancer."""
        return "load-balancer" if self.domain or self.certificate_arn else "cloudfront"


def _inside(domain: str, zone: str) -> bool:
    return domain == zone or domain.endswith("." + zone)


class Settings(Section):
    """The settings of one environment, defaults and overrides merged."""

    network: NetworkSettings = NetworkSettings()
    db: DatabaseSettings = DatabaseSettings()  # type: ignore[call-arg]
    registry: RegistrySettings = RegistrySettings()  # type: ignore[call-arg]
    image: ImageSettings = ImageSettings()
    service: ServiceSettings = ServiceSettings()  # type: ignore[call-arg]


class FileSchema(Section):
    app: str = Field(pattern=NAME_PATTERN, max_length=22)
    region: str  # one botocore's endpoint data knows
    defaults: dict[str, Any] = {}
    env: dict[str, dict[str, Any]]
    # The template of every preview (`pr-<N>` not under [env]): overrides of [defaults].
    preview: dict[str, Any] = {}

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _unless(region_problem(value), value)


def _unless(problem: str | None, value: str) -> str:
    """A field validator's answer: the value, or the problem found with it."""
    if problem:
        raise ValueError(problem)
    return value


class DeployConfig(Section):
    """What a command works on: one app, one environment, one region."""

    app: str
    env: str
    region: str
    settings: Settings
    # Made from the [preview] template: it carries an expiry and `gc` may delete it.
    preview: bool = False

    @property
    def prefix(self) -> str:
        """The name stem of everything this environment owns, e.g. `nnote-staging`."""
        return f"{self.app}-{self.env}"


def load(path: Path, env: str | None, region: str | None = None) -> DeployConfig:
    """Read and validate deploy.toml for one environment, or raise ConfigError. `region`
    overrides the file's (--region); it must name an AWS region too. An env named `pr-<N>`
    that the file does not name is a preview, made from the [preview] template."""
    if region is not None:
        check_region_option(region)
    raw = _read(path)
    file = _validate_file(raw)
    preview = env is not None and env not in file.env and is_preview_name(env)
    _check_env_choice(file, env)
    problems = _problems_of_every_env(file)
    if problems:
        raise ConfigError(f"{path} has {len(problems)} problem(s)", problems)
    assert env is not None  # _check_env_choice refused None
    settings = Settings.model_validate(_merged_settings(file, env))
    return DeployConfig(
        app=file.app, env=env, region=region or file.region, settings=settings, preview=preview
    )


def is_preview_name(env: str) -> bool:
    """Whether `env` names a pull request's preview (`pr-42`)."""
    return _matches(PREVIEW_PATTERN, env)


class AppConfig(Section):
    """What a command over every environment (`gc`, `status --all`) works on."""

    app: str
    region: str
    declared: frozenset[str]  # the [env] names: never previews, whatever their name


def load_app(path: Path, region: str | None = None) -> AppConfig:
    """Read and validate the whole of deploy.toml (every env and the preview template)."""
    if region is not None:
        check_region_option(region)
    file = _validate_file(_read(path))
    problems = _problems_of_every_env(file)
    if problems:
        raise ConfigError(f"{path} has {len(problems)} problem(s)", problems)
    return AppConfig(app=file.app, region=region or file.region, declared=frozenset(file.env))


def _check_env_choice(file: FileSchema, env: str | None) -> None:
    names = ", ".join(sorted(file.env))
    choices = f"choose one of: {names}, or pr-<N> (N a pull request's number) for a preview"
    if env is None:
        raise ConfigError("no environment chosen", hint=f"pass --env; {choices}")
    if env in file.env:
        return
    if not is_preview_name(env):
        raise ConfigError(f"unknown environment {env!r}", hint=choices)
    prefix = len(file.app) + 1 + len(env)
    if len(env) > 22 or prefix > LONGEST_PREFIX:
        raise ConfigError(
            f"preview {env!r} is too long: {file.app}-{env} is {prefix} characters; AWS "
            f"allows {LONGEST_PREFIX} for the load balancer and target group names it becomes",
            hint="a preview's number may have at most "
            f"{min(22, LONGEST_PREFIX - len(file.app) - 1) - 3} digits",
        )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found", hint="pass --config PATH or run from the repository root"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _validate_file(raw: dict[str, Any]) -> FileSchema:
    try:
        file = FileSchema.model_validate(raw)
    except ValidationError as error:
        problems = _describe(error, FileSchema)
        raise ConfigError(f"deploy.toml has {len(problems)} problem(s)", problems) from None
    bad_names = [
        f"env.{name}: must be {NAME_RULE}"
        for name in file.env
        if len(name) > 22 or not _matches(NAME_PATTERN, name)
    ]
    bad_names += [
        f"env.{name}: {file.app}-{name} is {len(file.app) + 1 + len(name)} characters; AWS "
        f"allows {LONGEST_PREFIX} for the load balancer and target group names it becomes"
        for name in file.env
        if len(file.app) + 1 + len(name) > LONGEST_PREFIX
    ]
    if bad_names:
        raise ConfigError(f"deploy.toml has {len(bad_names)} problem(s)", bad_names)
    return file


def _matches(pattern: str, value: str) -> bool:
    import re

    return re.fullmatch(pattern, value) is not None


def _problems_of_every_env(file: FileSchema) -> list[str]:
    """Validate each environment's merged settings, and the preview template's; name each
    problem where it was written."""
    problems = _not_for_previews_problems(file.preview)
    tables = {
        f"env.{name}": (_merged_settings(file, name), overrides)
        for name, overrides in file.env.items()
    }
    tables["preview"] = (_preview_settings(file), file.preview)
    for where_written, (merged, overrides) in tables.items():
        try:
            Settings.model_validate(merged)
        except ValidationError as error:
            for location, message in _located(error, Settings):
                written = _has_path(overrides, _about(location, message))
                where = where_written if written else "defaults"
                problem = (
                    f"{where}.{'.'.join(location)}: {message}"
                    if location
                    else f"{where}: {message}"
                )
                if problem not in problems:
                    problems.append(problem)
    return problems


def _about(location: tuple[str, ...], message: str) -> tuple[str, ...]:
    """The key a problem is about: its location, or, for a check of a whole table
    ("memory_mb: Fargate offers..."), the key of that table its message names; an env that
    sets other keys of the table did not write it."""
    named = message.split(":", 1)[0]
    return (*location, named) if named in _known_keys(Settings, location) else location


def _located(error: ValidationError, root: type[BaseModel]) -> list[tuple[tuple[str, ...], str]]:
    """Each problem as (where, what); an unknown key says which known key it may have meant."""
    located = []
    for item in error.errors():
        location = tuple(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_key(root, location)
        located.append((location, message))
    return located


def _unknown_key(root: type[BaseModel], location: tuple[str, ...]) -> str:
    known = _known_keys(root, location[:-1])
    if not known:
        return "unknown key"
    return "unknown key" + (
        did_you_mean(location[-1], known) or f"; known keys here: {', '.join(known)}"
    )


def _known_keys(root: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    """The keys the table at `path` under `root` may hold, by walking the schema's models."""
    model: type[BaseModel] | None = root
    for part in path:
        field = model.model_fields.get(part) if model else None
        model = _model_of(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or the model in `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_of, typing.get_args(annotation))), None)


def _describe(error: ValidationError, root: type[BaseModel]) -> list[str]:
    return [
        f"{'.'.join(location) or '(top level)'}: {message}"
        for location, message in _located(error, root)
    ]


def _has_path(table: dict[str, Any], location: tuple[str, ...]) -> bool:
    node: Any = table
    for part in location:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


PRODUCTION_NAMES = ("prod", "production")
# A production database is protected unless deploy.toml says otherwise.
PRODUCTION_DEFAULTS = {
    "db": {"deletion_protection": True, "final_snapshot": True, "snapshot_before_migrate": True}
}


def _merged_settings(file: FileSchema, env: str) -> dict[str, Any]:
    if env not in file.env and is_preview_name(env):
        return _preview_settings(file)
    base = _merge(PRODUCTION_DEFAULTS, file.defaults) if env in PRODUCTION_NAMES else file.defaults
    return _merge(base, file.env[env])


# What a preview cannot have. Previews deploy with the preview role (deployer/preview_policy.py,
# LEFT_OUT), which may change no Route 53 record and register no scalable target; and one
# [preview] table is the template of every preview, so they would all share its domain.
# Written under [preview] these are refused, naming the key. Set under [defaults] they are
# meant for the declared environments, and the preview template drops them: TOML cannot unset
# an inherited key, so refusing them there too would bar them from [defaults] in any file
# with a [preview] table.
NOT_FOR_PREVIEWS = {
    "domain": "every preview would share it, and the preview role may change no Route 53 record",
    "hosted_zone": "previews have no domain whose records it would hold",
    "certificate_arn": "previews have no domain: each is served on its own CloudFront URL",
    "autoscaling": "the preview role may not register scalable targets",
}


def _preview_settings(file: FileSchema) -> dict[str, Any]:
    """A preview's settings: [defaults] and [preview], without what previews cannot have."""
    merged = _merge(file.defaults, file.preview)
    service = merged.get("service")
    if not isinstance(service, dict):
        return merged  # not a table: the schema names that problem
    kept = {key: value for key, value in service.items() if key not in NOT_FOR_PREVIEWS}
    return {**merged, "service": kept}


def _not_for_previews_problems(preview: dict[str, Any]) -> list[str]:
    service = preview.get("service")
    written = service if isinstance(service, dict) else {}
    return [
        f"preview.service.{key}: not for previews ({why}); set it under [env.NAME] instead"
        for key, why in NOT_FOR_PREVIEWS.items()
        if key in written
    ]


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
