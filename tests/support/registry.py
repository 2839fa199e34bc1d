"""A local Docker registry on 127.0.0.1 standing in for ECR's registry endpoint."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.net import free_port, wait_until


@dataclass
class LocalRegistry:
    folder: Path
    read_only: bool = False  # answers reads, refuses pushes: a push failing mid-run
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        config = self.folder / "config.yml"
        maintenance = (
            "  maintenance:\n    readonly:\n      enabled: true\n" if self.read_only else ""
        )
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.folder / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"{maintenance}"
            f"http:\n  addr: {self.host}\n"
        )
        self.process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: requests.get(f"http://{self.host}/v2/", timeout=1).ok, 30, "registry")

    def tags(self, repository: str) -> list[str]:
        answer = requests.get(f"http://{self.host}/v2/{repository}/tags/list", timeout=5)
        return sorted(answer.json().get("tags") or []) if answer.ok else []

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
