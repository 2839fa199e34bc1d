"""image: the app's image, built from the repository's Dockerfile and pushed to ECR, tagged
with the git commit (plus `-dirty` when tracked files differ from it) and `latest`. The service
runs it by digest. A commit already in the registry is neither built nor pushed again.

The build is sent only the git-tracked files, as they are in the working tree (then filtered
by .dockerignore): untracked and git-ignored files never reach an image, so the tag names
exactly what is in it.

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
from collections.abc import Callable, Mapping
from pathlib import Path

from deployer.aws import call
from deployer.docker_engine import Credentials, DockerEngine
from deployer.errors import DeployError
from deployer.inventory import Resource
from deployer.steps.base import Change, Observed, Outputs, Run, Step

COMPONENT = "image"


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
            return {"prebuilt": self.prebuilt}
        version = source_version(self.source)
        credentials = self.credentials(run)
        repository = f"{credentials.registry}/{run.config.prefix}"
        digest = None
        if not version.endswith("-dirty"):  # a dirty tree never matches what was pushed
            digest = self.engine.registry_digest(f"{repository}:{version}", credentials)
        return {"version": version, "repository": repository, "digest": digest}

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
            return {"uri": self.prebuilt, "digest": self.prebuilt.partition("@")[2] or None}
        # What this run's plan saw (under the lock; a run that waited for it re-plans): looking
        # again would cost another ECR token and registry lookup on every converged `up`.
        observed = run.observed.get(COMPONENT) or self.observe(run)
        repository, version = observed["repository"], observed["version"]
        digest = observed["digest"]
        if digest is None:
            digest = self._build_and_push(run, repository, version)
        return {"uri": f"{repository}@{digest}", "digest": digest, "version": version}

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
        image_id = self.build(
            f"{repository}:{version}",
            build_args(run),
            lambda line: run.note(COMPONENT, line[:100]),
        )
        run.check_cancelled()
        self.engine.tag(image_id, repository, "latest")
        credentials = self.credentials(run)
        run.note(COMPONENT, f"pushing {repository}:{version}")
        digest = self.engine.push(repository, version, credentials)
        self.engine.push(repository, "latest", credentials)
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
