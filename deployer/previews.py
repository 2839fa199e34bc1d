"""Pull requests' preview environments: when each expires, renewing it, finding the expired.

A preview is an environment named `pr-<N>` that deploy.toml does not name under [env]; it is
made from the [preview] template (deployer.config). Every resource it makes carries
`nnote:expires` (inventory.EXPIRES), ISO-8601 UTC to the minute; each `up` of the preview
moves it to now + TTL on every resource it owns, so a pull request that is still pushed to
lives on, and `gc` deletes the previews whose expiry has passed.

Renewal is cheap and idempotent: one listing of the environment's tags (the tagging API), then
tag calls only for the resources whose expiry differs, batched where the service allows it
(EC2 takes every id in one call, Elastic Load Balancing 20 ARNs). A second `up` within the same
minute makes no tag call at all. Each tag call sets `nnote:expires` alone, which is all the
deploy role may change on a preview's existing resources (docs/iam-policy.json,
PreviewExpiryOnOwnedPreviews).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deployer.aws import Aws, absent
from deployer.config import is_preview_name
from deployer.errors import ConfigError, DeployError
from deployer.inventory import (
    COMPONENT,
    EXPIRES,
    Owner,
    active_revisions,
    key_of,
    leftovers,
    role_names,
    tagged_everywhere,
    tags_as_dict,
)

DEFAULT_TTL = timedelta(days=3)
LONGEST_TTL = timedelta(days=90)
TTL_PATTERN = re.compile(r"^([1-9][0-9]{0,4})([hd])$")
UNITS = {"h": "hours", "d": "days"}
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_ttl(text: str) -> timedelta:
    """`--ttl`: hours (`12h`) or days (`3d`), at most 90 days; ConfigError otherwise."""
    found = TTL_PATTERN.match(text.strip())
    ttl = timedelta(**{UNITS[found[2]]: int(found[1])}) if found else None
    if ttl is None or ttl > LONGEST_TTL:
        raise ConfigError(
            f"--ttl {text!r} is not a time to live",
            hint="hours or days, from 1h to 90d: e.g. --ttl 12h, --ttl 3d",
        )
    return ttl


def expiry(now: datetime, ttl: timedelta = DEFAULT_TTL) -> str:
    """The `nnote:expires` value for a preview made or renewed at `now`: to the minute, so
    every run within a minute agrees and a repeated `up` tags nothing."""
    return (now.astimezone(UTC) + ttl).replace(second=0, microsecond=0).strftime(FORMAT)


def parse_expiry(value: str | None) -> datetime | None:
    """An `nnote:expires` value as a time; None when missing or not ours to read."""
    try:
        return datetime.strptime(value or "", FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


# -- renewal ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Renewal:
    expires: str
    renewed: int  # resources whose expiry this run moved
    unchanged: int


def renew(aws: Aws, owner: Owner) -> Renewal:
    """Set `owner.expires` on every resource the preview owns whose expiry differs."""
    assert owner.expires, "renew is for previews, whose owner carries an expiry"
    hits = [(arn, tags) for arn, tags in tagged_everywhere(aws, owner) if _renewable(arn, tags)]
    hits += _roles(aws, owner)
    active = active_revisions(aws, [arn for arn, _ in hits])
    stale = [
        arn
        for arn, tags in hits
        if tags.get(EXPIRES) != owner.expires and (":task-definition/" not in arn or arn in active)
    ]
    by_service: dict[str, list[str]] = {}
    for arn in stale:
        by_service.setdefault(arn.split(":")[2], []).append(arn)
    for service, arns in sorted(by_service.items()):
        TAGGERS[service](aws, arns, owner.expires)
    return Renewal(owner.expires, len(stale), len(hits) - len(stale))


def _renewable(arn: str, tags: dict[str, str]) -> bool:
    """Not the lock (a run's own parameter, gone when the run ends) nor an automated backup
    (RDS copies the instance's tags onto it and deletes it with the instance)."""
    kind, ident = key_of(arn)
    automated = kind == "rds:snapshot" and ident.startswith("rds:")
    return tags.get(COMPONENT) != "lock" and not automated


def _roles(aws: Aws, owner: Owner) -> list[tuple[str, dict[str, str]]]:
    """The task roles with their tags, read by name: the tagging API does not list roles."""
    found = []
    for name in role_names(f"{owner.app}-{owner.env}").values():
        answer = absent(aws, "iam", "list_role_tags", MISSING["iam"], RoleName=name)
        if answer is not None and owner.owns(answer.get("Tags")):
            found.append((f"arn:aws:iam:::role/{name}", tags_as_dict(answer.get("Tags"))))
    return found


# Error codes that mean the resource went meanwhile: the listing lags behind deletes.
MISSING: dict[str, tuple[str, ...]] = {
    "ec2": (
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidID",
    ),
    "elasticloadbalancing": (
        "LoadBalancerNotFound",
        "TargetGroupNotFound",
        "ListenerNotFound",
        "RuleNotFound",
    ),
    "rds": ("DBInstanceNotFound", "DBSubnetGroupNotFoundFault", "DBSnapshotNotFound"),
    "ecs": ("ClusterNotFoundException", "ServiceNotFoundException", "InvalidParameterException"),
    "logs": ("ResourceNotFoundException",),
    "secretsmanager": ("ResourceNotFoundException",),
    "cloudfront": ("NoSuchResource",),
    "cloudwatch": ("ResourceNotFoundException",),
    "ecr": ("RepositoryNotFoundException",),
    "acm": ("ResourceNotFoundException",),
    "iam": ("NoSuchEntity", "NoSuchEntityException"),
}


def _one_by_one(
    service: str, operation: str, params: Callable[[str, str], dict[str, Any]]
) -> Callable[[Aws, list[str], str], None]:
    """A tagger for a service that tags one resource a call."""

    def tag(aws: Aws, arns: list[str], expires: str) -> None:
        for arn in arns:
            absent(aws, service, operation, MISSING[service], **params(arn, expires))

    return tag


def _batched(
    client: str, operation: str, key: str, size: int, ids: Callable[[list[str]], list[str]]
) -> Callable[[Aws, list[str], str], None]:
    """A tagger for a service that tags many resources a call (`size` at most); when one of
    a batch went meanwhile, the batch is tagged again one by one, the gone one skipped."""

    def tag(aws: Aws, arns: list[str], expires: str) -> None:
        missing = MISSING[client.replace("elbv2", "elasticloadbalancing")]
        for batch in _batches(ids(arns), size):
            params = {key: batch, "Tags": _tags(expires)}
            if absent(aws, client, operation, missing, **params) is None:
                for one in batch:
                    absent(aws, client, operation, missing, **{**params, key: [one]})

    return tag


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _tags(expires: str) -> list[dict[str, str]]:
    return [{"Key": EXPIRES, "Value": expires}]


TAGGERS: dict[str, Callable[[Aws, list[str], str], None]] = {
    # CreateTags takes up to 1,000 resource ids (EC2 API reference); ELB's AddTags states no
    # limit, so batches of 20, what its DescribeTags takes.
    "ec2": _batched(
        "ec2", "create_tags", "Resources", 1000, lambda arns: [a.rsplit("/", 1)[-1] for a in arns]
    ),
    "elasticloadbalancing": _batched("elbv2", "add_tags", "ResourceArns", 20, list),
    "rds": _one_by_one(
        "rds", "add_tags_to_resource", lambda arn, e: {"ResourceName": arn, "Tags": _tags(e)}
    ),
    "ecs": _one_by_one(
        "ecs",
        "tag_resource",
        lambda arn, e: {"resourceArn": arn, "tags": [{"key": EXPIRES, "value": e}]},
    ),
    "logs": _one_by_one(
        "logs",
        "tag_resource",
        lambda arn, e: {"resourceArn": arn.removesuffix(":*"), "tags": {EXPIRES: e}},
    ),
    "secretsmanager": _one_by_one(
        "secretsmanager", "tag_resource", lambda arn, e: {"SecretId": arn, "Tags": _tags(e)}
    ),
    "cloudfront": _one_by_one(
        "cloudfront",
        "tag_resource",
        lambda arn, e: {"Resource": arn, "Tags": {"Items": _tags(e)}},
    ),
    "cloudwatch": _one_by_one(
        "cloudwatch", "tag_resource", lambda arn, e: {"ResourceARN": arn, "Tags": _tags(e)}
    ),
    "ecr": _one_by_one(
        "ecr", "tag_resource", lambda arn, e: {"resourceArn": arn, "tags": _tags(e)}
    ),
    "acm": _one_by_one(
        "acm",
        "add_tags_to_certificate",
        lambda arn, e: {"CertificateArn": arn, "Tags": _tags(e)},
    ),
    "iam": _one_by_one(
        "iam",
        "tag_role",
        lambda arn, e: {"RoleName": arn.rsplit("/", 1)[-1], "Tags": _tags(e)},
    ),
}


# -- every environment of the app, and the expired previews --------------------------------


@dataclass(frozen=True)
class Environment:
    """One environment of the app, as the tag inventory shows it."""

    name: str
    preview: bool  # named pr-<N> and not declared under [env]
    expires: datetime | None  # a preview's latest expiry among its resources
    resources: int

    def expired(self, now: datetime) -> bool:
        """Only a preview, and only once every resource's expiry has passed; a preview whose
        expiry cannot be read is never judged expired."""
        return self.preview and self.expires is not None and self.expires <= now


def environments(
    listing: dict[str, list[tuple[str, dict[str, str]]]], declared: frozenset[str]
) -> list[Environment]:
    """The app's environments from `inventory.tagged_by_env`. An env that only has a CloudFront
    distribution listed may be another region's and is left out."""
    found = []
    for name, hits in sorted(listing.items()):
        if all(arn.startswith("arn:aws:cloudfront:") for arn, _ in hits):
            continue
        preview = is_preview_name(name) and name not in declared
        stamps = [parse_expiry(tags.get(EXPIRES)) for _, tags in hits]
        latest = max((s for s in stamps if s), default=None) if preview else None
        found.append(Environment(name, preview, latest, len(hits)))
    return found


class PreviewRenewed(DeployError):
    """`gc` found, holding the preview's lock, that it no longer expires: an `up` of its pull
    request renewed it after `gc` listed it. Nothing was deleted."""


def ensure_expired(aws: Aws, owner: Owner, now: datetime) -> None:
    """Raise PreviewRenewed unless the preview has still expired. `gc` asks once it holds the
    preview's lock, just before deleting: it listed every preview at its start, and deleting
    each of them takes minutes, time enough for a push to the pull request to `up` (and renew)
    one still waiting its turn. An `up` under way holds the lock (gc cannot take it); one that
    starts later waits for it, then makes the preview again. The tagging API shows a renewal
    seconds late at most, against the minutes an `up` takes."""
    # Not the lock gc itself holds (it carries gc's run's expiry), as `renew` leaves it.
    hits = [(arn, tags) for arn, tags in tagged_everywhere(aws, owner) if _renewable(arn, tags)]
    found = environments({owner.env: hits}, frozenset())
    if found and found[0].preview and not found[0].expired(now):
        expires = found[0].expires.strftime(FORMAT) if found[0].expires else "never"
        raise PreviewRenewed(
            f"{owner.env} was renewed after gc listed it (expires {expires}); kept",
            "nothing to do: gc deletes it once it expires",
        )


def still_there(aws: Aws, app: str, env: str) -> bool:
    """Whether anything of the environment still exists, each listed resource confirmed by
    its own service (the tagging API lists deleted ones for a while)."""
    return bool(leftovers(aws, Owner(app, env, "gc")))
