"""The one Docker boundary: build, log in, push, and ask a registry for a digest.

The docker SDK reports push errors inside the progress stream instead of raising, and a
missing engine as DockerException; both become DeployError with a hint here.

A build sends only the files its caller names (filtered by their .dockerignore, as the SDK
filters a folder), so what is in the image is what the caller says the source is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from deployer.errors import DeployError

NO_ENGINE_HINT = (
    "start Docker (is /var/run/docker.sock there?) or pass --image URI to skip the build"
)
DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class Credentials:
    registry: str  # host[:port], no scheme
    username: str
    password: str

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


class DockerEngine:
    def __init__(self) -> None:
        import docker
        import docker.errors

        try:
            self.client = docker.from_env()
            self.client.ping()
        except docker.errors.DockerException as error:
            raise DeployError(
                f"no Docker engine reachable ({type(error).__name__})", NO_ENGINE_HINT
            ) from None

    def build(
        self,
        context: Path,
        files: Collection[str],
        tag: str,
        build_args: Mapping[str, str],
        network_mode: str | None = None,
        on_line: Callable[[str], None] = lambda _line: None,
    ) -> str:
        """Build the Dockerfile in `context` from `files` there (paths relative to it); return
        the image id. `network_mode` is what RUN steps get (None: the engine's default).
        Build errors raise."""
        with context_archive(context, files) as archive:
            stream = self.client.api.build(
                fileobj=archive,
                custom_context=True,
                tag=tag,
                rm=True,
                decode=True,
                buildargs=dict(build_args),
                network_mode=network_mode,
            )
            return built_image_id(stream, on_line)

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.client.api.tag(image, repository, tag)

    def push(self, repository: str, tag: str, credentials: Credentials) -> str:
        """Push one tag; return its digest. Errors arrive in the stream, not as exceptions."""
        stream = self.client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=credentials.auth_config()
        )
        return push_digest(stream, f"{repository}:{tag}")

    def registry_digest(self, reference: str, credentials: Credentials) -> str | None:
        """The digest the registry holds for `reference`, or None if it has none."""
        import docker.errors

        try:
            data = self.client.images.get_registry_data(
                reference, auth_config=credentials.auth_config()
            )
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as error:
            if error.status_code in (401, 403, 404) or "not found" in str(error).lower():
                return None
            raise DeployError(
                f"cannot ask the registry about {reference}: {error.explanation}",
                "check the registry host and credentials",
            ) from None
        return str(data.id)

    def version(self) -> str:
        return str(self.client.version().get("Version", "?"))

    def image_available(self, reference: str) -> bool:
        """Whether a build can start FROM `reference`: it is here, or its registry has it."""
        import docker.errors

        try:
            self.client.images.get(reference)
            return True
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError:
            return False
        try:
            self.client.images.get_registry_data(reference)
            return True
        except docker.errors.APIError:
            return False


def context_archive(root: Path, files: Collection[str]) -> IO[bytes]:
    """A tar of `files` under `root`, less what the .dockerignore among them excludes.

    The SDK's own walk decides what .dockerignore lets through (it always keeps the Dockerfile
    and the ignore file), exactly as for `docker build .`; of that, only `files` are sent. An
    ignore file outside `files` is not read: it is no more part of the source than the files
    it would hide."""
    from docker.utils.build import create_archive, exclude_paths

    patterns = dockerignore_patterns(root) if DOCKERIGNORE in files else []
    let_through = exclude_paths(str(root), patterns)
    return create_archive(root=str(root), files=sorted(let_through.intersection(files)))


def dockerignore_patterns(root: Path) -> list[str]:
    """The patterns of root's .dockerignore, read as the SDK reads them."""
    lines = (line.strip() for line in (root / DOCKERIGNORE).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def built_image_id(stream: Iterable[dict[str, Any]], on_line: Callable[[str], None]) -> str:
    """The id a build stream ends with; its output lines go to `on_line`, its error raises."""
    image_id = None
    for item in stream:
        if "error" in item:
            raise DeployError(
                f"image build failed: {str(item['error']).strip()}",
                "run `docker build .` to see the whole log",
            )
        if "stream" in item and item["stream"].strip():
            on_line(item["stream"].strip())
        if "aux" in item and "ID" in item["aux"]:
            image_id = item["aux"]["ID"]
    if image_id is None:
        raise DeployError("image build gave no image id", "run `docker build .` to see why")
    return str(image_id)


def push_digest(stream: Iterable[dict[str, Any]], what: str) -> str:
    digest = None
    for item in stream:
        if "error" in item or "errorDetail" in item:
            message = item.get("error") or json.dumps(item.get("errorDetail"))
            raise DeployError(
                f"push of {what} failed: {message}",
                "check the registry login and that the repository exists",
            )
        aux = item.get("aux") or {}
        digest = aux.get("Digest", digest)
    if digest is None:
        raise DeployError(f"push of {what} reported no digest", "run up again")
    return str(digest)
