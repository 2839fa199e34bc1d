"""The one Docker boundary: build, log in, push, and ask a registry for a digest.

The docker SDK reports push errors inside the progress stream instead of raising, and a
missing engine as DockerException; both become DeployError with a hint here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import DeployError

NO_ENGINE_HINT = (
    "start Docker (is /var/run/docker.sock there?) or pass --image URI to skip the build"
)


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
        tag: str,
        build_args: Mapping[str, str],
        on_line: Callable[[str], None] = lambda _line: None,
    ) -> str:
        """Build the Dockerfile in `context`; return the image id. Build errors raise."""
        stream = self.client.api.build(
            path=str(context), tag=tag, rm=True, decode=True, buildargs=dict(build_args)
        )
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
