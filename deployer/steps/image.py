"""image: the app's image, built from the repository's Dockerfile and pushed to ECR, tagged
with the git commit (plus `-dirty` when tracked files differ from it) and `latest`. The service
runs it by digest. A commit already in the registry is neither built nor pushed again.

The build is sent only the git-tracked files, as they are in the working tree (then filtered
by .dockerignore): untracked and git-ignored files never reach an image, so the tag names
exactly what is in it.

A prebuilt image (--image) is neither built nor pushed; one in this account's ECR must exist
there before anything is changed (prebuilt_image): `plan` and `up` stop with "not found"
instead of registering a task definition whose tasks could never pull it.

Environment:
  NNOTE_DEPLOY_BUILD_ARGS     build arguments (a JSON object) on top of deploy.toml's
  NNOTE_DEPLOY_BUILD_NETWORK  the network the build's RUN steps get, e.g. "host" for a build
                              that installs from a wheel server on the build machine; unset:
                              the engine's default
  NNOTE_DEPLOY_PUSH_HOST      the registry host to push to, instead of ECR's endpoint
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from deployer.aws import absent, call
from deployer.docker_engine import Credentials, DockerEngine
from deployer.errors import DeployError
from deployer.inventory import MANAGED_BY, MANAGER, Resource, tags_as_dict
from deployer.schema import read_schema
from deployer.steps.base import Change, Observed, Outputs, Run, Step
from deployer.validation import check_image_reference

COMPONENT = "image"
ECR_MISSING = ("RepositoryNotFoundException", "ImageNotFoundException")


def source_version(source: Path) -> str:
    """The commit to tag with; `-dirty` when tracked files differ from it (edited or deleted)."""
    commit = _git(source, "rev-parse", "HEAD").strip()
    dirty = bool(_git(source, "status", "--porcelain", "--untracked-files=no").strip())
    return commit[:12] + ("-dirty" if dirty else "")


def tracked_files(source: Path) -> list[str]:
    """What a clean checkout of `source` holds, with the working tree's contents: the tracked
    files less those deleted (which source_version calls dirty)."""
    names = _git(source, "ls-files", "-z").split("\0")
    return [name for name in names if name and os.path.lexists(source / name)]


def _git(source: Path, *args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(source), *args], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        raise DeployError(
            f"{source} is not a git checkout with a commit",
            "run from the repository, or pass --image URI",
        ) from None


def build_args(run: Run) -> dict[str, str]:
    """deploy.toml's build arguments, then NNOTE_DEPLOY_BUILD_ARGS (a JSON object) on top."""
    extra = os.environ.get("NNOTE_DEPLOY_BUILD_ARGS")
    try:
        overrides = json.loads(extra) if extra else {}
    except ValueError:
        raise DeployError("NNOTE_DEPLOY_BUILD_ARGS is not JSON", 'use {"NAME": "value"}') from None
    return {**run.config.settings.image.build_args, **{k: str(v) for k, v in overrides.items()}}


def build_network() -> str | None:
    """NNOTE_DEPLOY_BUILD_NETWORK, or None for the engine's default network."""
    return os.environ.get("NNOTE_DEPLOY_BUILD_NETWORK") or None


def prebuilt_image(run: Run, uri: str) -> str:
    """Where the prebuilt image `uri` is, said in a line. One in this account's ECR (an app's
    repository) is looked up there: DeployError "not found" if it is not. Any other is not
    checked: deploying a prebuilt image needs no Docker engine, the one registry client we
    have; ECS says so when tasks start. ConfigError for a malformed reference."""
    reference = check_image_reference(uri)
    where = reference.ecr
    if where is None:
        return f"{uri}: not checked (not in ECR: ECS pulls it when tasks start)"
    account, region = where
    if account != run.aws.identity()["account"]:
        return f"{uri}: not checked (in account {account}'s ECR, not this one's)"
    repository = reference.repository
    if not repository.startswith(f"{run.config.app}-"):
        return f"{uri}: not checked (the deploy role may read only {run.config.app}-* repositories)"
    aws = run.aws.in_region(region)
    found = absent(aws, "ecr", "describe_repositories", ECR_MISSING, repositoryNames=[repository])
    repo = (found or {}).get("repositories", [None])[0]
    if repo is None:
        raise _not_found(uri, f"ECR has no repository {repository} in {region}")
    tags = tags_as_dict(
        call(aws, "ecr", "list_tags_for_resource", resourceArn=repo["repositoryArn"])["tags"]
    )
    if tags.get(MANAGED_BY) != MANAGER:
        return f"{uri}: not checked (repository {repository} is not managed by nnote-deploy)"
    # ECS runs the digest when there is one (a tag beside it is ignored); no tag means latest.
    wanted = (
        {"imageDigest": reference.digest}
        if reference.digest
        else {"imageTag": reference.tag or "latest"}
    )
    images = absent(
        aws,
        "ecr",
        "describe_images",
        ECR_MISSING,
        registryId=account,
        repositoryName=repository,
        imageIds=[wanted],
    )
    details = (images or {}).get("imageDetails") or []
    if not details:
        what = reference.digest or f"tag {reference.tag or 'latest'}"
        raise _not_found(uri, f"ECR repository {repository} has no image {what}")
    return f"{uri}: in ECR ({details[0]['imageDigest']})"


def _not_found(uri: str, why: str) -> DeployError:
    return DeployError(
        f"image not found: {uri} ({why}); nothing was changed",
        "push the image first (docker push), or pass the URI the push printed",
    )


class ImageStep(Step):
    name = COMPONENT
    depends_on = ("registry",)

    def __init__(self, source: Path, prebuilt: str | None = None) -> None:
        self.source = source
        self.prebuilt = prebuilt
        self._engine: DockerEngine | None = None

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = DockerEngine()
        return self._engine

    def credentials(self, run: Run) -> Credentials:
        """Log-in details from ECR's token; the push host may be overridden (emulators)."""
        data = call(run.aws, "ecr", "get_authorization_token")["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        host = (
            os.environ.get("NNOTE_DEPLOY_PUSH_HOST")
            or run.config.settings.registry.push_host
            or data["proxyEndpoint"].split("://")[-1]
        )
        return Credentials(host.rstrip("/"), username, password)

    def observe(self, run: Run) -> Observed:
        if self.prebuilt:
            # Before any change: an image ECS could never pull fails the plan, not the rollout.
            return {
                "prebuilt": self.prebuilt,
                "found": prebuilt_image(run, self.prebuilt),
                "schema": None,  # an image's migrations cannot be read without pulling it
            }
        version = source_version(self.source)
        credentials = self.credentials(run)
        repository = f"{credentials.registry}/{run.config.prefix}"
        digest = None
        if not version.endswith("-dirty"):  # a dirty tree never matches what was pushed
            digest = self.engine.registry_digest(f"{repository}:{version}", credentials)
        return {
            "version": version,
            "repository": repository,
            "digest": digest,
            "schema": read_schema(self.source),
        }

    def resources(self, observed: Observed) -> list[Resource]:
        if observed.get("digest"):
            return [
                Resource(
                    COMPONENT,
                    "image",
                    f"{observed['repository']}:{observed['version']}",
                    observed["digest"],
                )
            ]
        return []

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        if observed.get("prebuilt") or observed.get("digest"):
            return []
        return [
            Change(
                COMPONENT,
                "create",
                "image",
                f"{observed['repository']}:{observed['version']}",
                "build and push",
            )
        ]

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        if self.prebuilt:
            return {
                "uri": self.prebuilt,
                "digest": self.prebuilt.partition("@")[2] or None,
                "schema": None,
            }
        # What this run's plan saw (under the lock; a run that waited for it re-plans): looking
        # again would cost another ECR token and registry lookup on every converged `up`.
        observed = run.observed.get(COMPONENT) or self.observe(run)
        repository, version = observed["repository"], observed["version"]
        digest = observed["digest"]
        if digest is None:
            digest = self._build_and_push(run, repository, version)
        return {
            "uri": f"{repository}@{digest}",
            "digest": digest,
            "version": version,
            "schema": observed.get("schema"),
        }

    def build(
        self,
        tag: str,
        args: Mapping[str, str],
        on_line: Callable[[str], None] = lambda _line: None,
    ) -> str:
        """Build the source's tracked files as `tag`; return the image id."""
        return self.engine.build(
            self.source, tracked_files(self.source), tag, args, build_network(), on_line
        )

    def _build_and_push(self, run: Run, repository: str, version: str) -> str:
        run.note(COMPONENT, f"building {repository}:{version}")
        started = time.time()
        image_id = self.build(
            f"{repository}:{version}",
            build_args(run),
            lambda line: run.note(COMPONENT, line[:100]),
        )
        run.timeline.span("build", started, time.time())
        run.check_cancelled()
        self.engine.tag(image_id, repository, "latest")
        credentials = self.credentials(run)
        run.note(COMPONENT, f"pushing {repository}:{version}")
        started = time.time()
        digest = self.engine.push(repository, version, credentials)
        self.engine.push(repository, "latest", credentials)
        run.timeline.span("push", started, time.time())
        run.journal.record(
            COMPONENT, f"pushed {repository}:{version}", lambda: self._untag(run, version)
        )
        return digest

    @staticmethod
    def _untag(run: Run, version: str) -> None:
        """Undo a push. (`latest` keeps pointing at the pushed image: it names nothing the
        service runs, which is always a digest.)"""
        answer = call(
            run.aws,
            "ecr",
            "batch_delete_image",
            repositoryName=run.config.prefix,
            imageIds=[{"imageTag": version}],
        )
        # BatchDeleteImage reports per-image failures in its answer instead of raising.
        failed = [f for f in answer.get("failures", []) if f.get("failureCode") != "ImageNotFound"]
        if failed:
            raise DeployError(
                f"could not delete image {version}: {failed[0].get('failureReason', '?')}",
                f"delete it by hand: aws ecr batch-delete-image --repository-name "
                f"{run.config.prefix} --image-ids imageTag={version}",
            )

    def destroy(self, run: Run, observed: Observed) -> None:
        """Images go with their repository (the registry step deletes it with force)."""
