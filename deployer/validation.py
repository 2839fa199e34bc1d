"""What can be checked before any AWS call, and before boto3 is even imported: region names,
RDS instance classes, image references. Each check says what is wrong and, for a close typo,
what was probably meant.

A leaf module: it imports nothing of ours but the errors, and no AWS SDK (the region list is
read from botocore's bundled endpoint data as a file, without importing botocore).
"""

from __future__ import annotations

import difflib
import functools
import gzip
import importlib.util
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError

# -- did you mean ---------------------------------------------------------------------------


def close_match(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice `word` most likely meant to be: the same but for case, else the closest
    spelling (difflib) at least `cutoff` alike; None if nothing is that close."""
    options = [choice for choice in choices if choice != word]
    folded = {choice.lower(): choice for choice in options}
    if word.lower() in folded:
        return folded[word.lower()]
    found = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`; did you mean X?` for a close match, else nothing: ready to end a message with."""
    match = close_match(word, choices, cutoff)
    return f"; did you mean {match}?" if match else ""


# -- regions --------------------------------------------------------------------------------

# The shape of every region name (eu-west-1, us-gov-west-1, eusc-de-east-1): the check when
# botocore's endpoint data cannot be read.
REGION_SHAPE = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")
REGION_EXAMPLE = "eu-west-1"


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition botocore ships data for, read as files: neither
    botocore nor boto3 is imported. Empty if none can be found.

    partitions.json (7 KB) lists every region, new ones first (me-west-1 and sa-west-1 are
    not in botocore 1.44's endpoints.json); endpoints.json (1.2 MB, 25 times slower to read on
    every command's start) only for a botocore without it. The `aws-global`-like
    pseudo-regions are not places to deploy."""
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    regions: set[str] = set()
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for name in ("partitions.json", "endpoints.json"):
            data = _bundled_json(Path(folder) / "data" / name)
            for partition in data.get("partitions", []):
                regions.update(partition.get("regions", {}))
            if regions:
                break
    return frozenset(r for r in regions if not r.endswith("-global"))


def _bundled_json(path: Path) -> dict[str, Any]:
    """One of botocore's data files, plain or gzipped; {} if it is not there."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            raw = candidate.read_bytes()
            data: dict[str, Any] = json.loads(
                gzip.decompress(raw) if candidate.suffix == ".gz" else raw
            )
            return data
    return {}


def region_problem(region: str) -> str | None:
    """Why `region` is not an AWS region name, or None if it is one."""
    known = known_regions()
    if region in known or (not known and REGION_SHAPE.fullmatch(region)):
        return None
    suggestion = did_you_mean(region, known, cutoff=0.8)
    return f"{region!r} is not an AWS region" + (
        suggestion or " (not in botocore's endpoint data; a newer region needs a newer botocore)"
    )


def check_region_option(region: str) -> None:
    """The `--region` override: raises ConfigError (exit 3) unless it names a region."""
    problem = region_problem(region)
    if problem:
        meant = close_match(region, known_regions(), cutoff=0.8) or REGION_EXAMPLE
        raise ConfigError(f"--region {problem}", hint=f"pass a region name, e.g. --region {meant}")


# -- RDS instance classes -------------------------------------------------------------------

# Current RDS for MySQL instance classes of the common families, as the RDS User Guide lists
# them ("Hardware specifications for DB instance classes"). Only for "did you mean": a
# well-formed class not listed here is allowed; the pre-flight asks whether the region sells it.
_BURSTABLE = ("micro", "small", "medium", "large", "xlarge", "2xlarge")
_TO_16X = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_TO_24X = (*_TO_16X, "24xlarge")
_TO_32X = (*_TO_24X, "32xlarge")
RDS_CLASS_SIZES: dict[str, tuple[str, ...]] = {
    "t3": _BURSTABLE,
    "t4g": _BURSTABLE,
    "m5": _TO_24X,
    "m6g": _TO_16X,
    "m6i": _TO_32X,
    "m7g": _TO_16X,
    "r5": _TO_24X,
    "r6g": _TO_16X,
    "r6i": _TO_32X,
    "r7g": _TO_16X,
}
RDS_INSTANCE_CLASSES = tuple(
    f"db.{family}.{size}" for family, sizes in RDS_CLASS_SIZES.items() for size in sizes
)
# db.FAMILY.SIZE, as the schema has always taken it; a size is usually one of RDS's size words
# (db.m7i.metal-24xl included).
INSTANCE_CLASS_SHAPE = re.compile(r"db\.([a-z0-9]+)\.([a-z0-9]+(?:-[a-z0-9]+)*)")
INSTANCE_SIZE = re.compile(r"nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?")
INSTANCE_CLASS_RULE = "db.FAMILY.SIZE, e.g. db.t4g.micro"


def instance_class_problem(value: str) -> str | None:
    """Why `value` cannot be an RDS instance class, naming the class it probably meant. None
    for a known class and for any other well-formed one (db.m7i.large, db.x2g.large) that is
    no close typo of a known one: whether the region sells it is the pre-flight's question."""
    if value in RDS_INSTANCE_CLASSES:
        return None
    shape = INSTANCE_CLASS_SHAPE.fullmatch(value)
    if shape is None:
        suggestion = did_you_mean(value, RDS_INSTANCE_CLASSES, cutoff=0.75)
        return f"{value!r} is not an RDS instance class{suggestion or f' ({INSTANCE_CLASS_RULE})'}"
    family, size = shape.groups()
    if INSTANCE_SIZE.fullmatch(size):
        return None  # a real size: a class this list does not know (yet), not a typo
    choices = (
        [f"db.{family}.{known}" for known in RDS_CLASS_SIZES[family]]
        if family in RDS_CLASS_SIZES
        else RDS_INSTANCE_CLASSES
    )
    suggestion = did_you_mean(value, choices, cutoff=0.75)
    return f"{value!r}: {size!r} is not an instance size{suggestion}" if suggestion else None


# -- image references -----------------------------------------------------------------------

# The Docker distribution reference grammar (github.com/distribution/reference, reference.go):
#   reference := name [ ":" tag ] [ "@" digest ];  name := [domain "/"] path
#   domain := host [":" port];  path := path-component ["/" path-component]*
#   path-component := [a-z0-9]+ (separator [a-z0-9]+)*;  separator := [_.] | "__" | "-"+
#   tag := [\w][\w.-]{0,127}
# Here the registry host is required (without one Docker and ECS pull from Docker Hub), and
# the digest is sha256, the only one ECS takes.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
REGISTRY = re.compile(rf"{_HOST}(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
NAME_MAX = 255  # the name (registry and path), and ECS's limit before the "@"
IMAGE_SHAPE = "REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]"
IMAGE_EXAMPLE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/nnote-staging@sha256:<64 hex digits>"
# A private ECR registry: ACCOUNT.dkr.ecr.REGION.amazonaws.com (.com.cn in China), FIPS
# (dkr.ecr-fips) and dual-stack (ACCOUNT.dkr-ecr.REGION.on.aws).
ECR_REGISTRY = re.compile(
    r"(?P<account>[0-9]{12})\.(?:dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"|dkr-ecr(?:-fips)?\.(?P<dual_region>[a-z0-9-]+)\.on\.aws)"
)


@dataclass(frozen=True)
class ImageReference:
    """A well-formed image reference: registry host, repository path, and a tag, a digest
    or both (ECS then runs the digest)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"

    @property
    def ecr(self) -> tuple[str, str] | None:
        """(account, region) for an image in a private ECR registry, else None."""
        found = ECR_REGISTRY.fullmatch(self.registry)
        if found is None:
            return None
        return found["account"], found["region"] or found["dual_region"]


def check_image_reference(text: str) -> ImageReference:
    """`--image`: the reference parsed, or ConfigError (exit 3) saying what is wrong with it
    and showing the shape expected. No AWS call; whether the image exists is the image step's
    to find out (deployer.steps.image.prebuilt_image)."""
    reason = _image_problem(text)
    if reason is None:
        return _parse(text)
    raise ConfigError(
        f"--image {text!r} is not an image reference: {reason}",
        hint=f"pass {IMAGE_SHAPE}, e.g. {IMAGE_EXAMPLE}",
    )


def _parse(text: str) -> ImageReference:
    name, _, digest = text.partition("@")
    registry, _, rest = name.partition("/")
    repository, _, tag = rest.partition(":")
    return ImageReference(registry, repository, tag or None, digest or None)


def _image_problem(text: str) -> str | None:
    if not text:
        return "it is empty"
    if re.search(r"\s", text):
        return "it holds whitespace"
    scheme = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", text)
    if scheme:
        meant = text[scheme.end() :]
        return f"drop the {scheme.group(0)} (a reference has no scheme); did you mean {meant}?"
    name, at, digest = text.partition("@")
    if at and not DIGEST.fullmatch(digest):
        return _digest_problem(text, digest)
    if len(name) > NAME_MAX:
        return f"{len(name)} characters before any @digest; the most is {NAME_MAX}"
    registry, slash, rest = name.partition("/")
    if not slash or not ("." in registry or ":" in registry or registry == "localhost"):
        return (
            "it names no registry host (without one, the image would be pulled from Docker "
            "Hub); put the registry first, e.g. 123456789012.dkr.ecr.REGION.amazonaws.com/"
        )
    if not REGISTRY.fullmatch(registry):
        return f"{registry!r} is not a registry host[:port]"
    repository, colon, tag = rest.partition(":")
    if colon and not TAG.fullmatch(tag):
        return f"the tag {tag!r} is not a tag (up to 128 letters, digits, _ . -; not first . -)"
    if not REPOSITORY.fullmatch(repository):
        if REPOSITORY.fullmatch(repository.lower()):
            meant = text.replace(repository, repository.lower(), 1)
            return f"the repository path must be lower-case; did you mean {meant}?"
        return (
            f"the repository path {repository!r} is not one: lower-case letters and digits, "
            "separated by . _ __ - or /"
        )
    return None


def _digest_problem(text: str, digest: str) -> str:
    algorithm, _, hexdigits = digest.partition(":")
    if algorithm != "sha256":
        return f"the digest must be sha256:<64 hex digits>, not {algorithm or digest!r}"
    if re.fullmatch(r"[a-fA-F0-9]{64}", hexdigits):
        meant = text.replace(hexdigits, hexdigits.lower())
        return f"the digest must be lower-case; did you mean {meant}?"
    return f"the digest must be sha256: and 64 lower-case hex digits, not {len(hexdigits)}"


# -- logs --since --------------------------------------------------------------------------

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The unit words people write, by the unit they mean: "10min" is answered "did you mean 10m?".
UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
}
# CloudWatch Logs keeps events 10 years at most (retention 3653 days); further back is no log
# line, and a start before 1970 is an error FilterLogEvents answers.
LONGEST_SECONDS = 3653 * 86400
SINCE_HINT = "use a number and a unit: 30s, 10m, 2h or 1d"


def parse_since(text: str) -> float:
    """`--since`: seconds back, or ConfigError (exit 3); no AWS call."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise ConfigError(f"--since {text!r} is not a duration{_meant(text)}", hint=SINCE_HINT)
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > LONGEST_SECONDS:
        raise ConfigError(
            f"--since {text!r} is further back than CloudWatch Logs keeps anything (10 years)",
            hint="use at most 3653d",
        )
    return seconds


def _meant(text: str) -> str:
    """`; did you mean 10m?` for a duration written another way (10min, 2 hours, 1D)."""
    match = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", text.strip())
    if match:
        word = match.group(2).lower()
        for unit, words in UNIT_WORDS.items():
            if word in words:
                return f"; did you mean {int(match.group(1))}{unit}?"
    return ""
