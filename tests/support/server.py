"""gunicorn running the real app in a subprocess, as the container and the demo do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.net import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gunicorn:
    database_url: str
    workers: int = 2
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "NNOTE_ENV": "production",
            "SECRET_KEY": "gunicorn-test-secret",
            "DATABASE_URL": self.database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(self.workers),
            **self.env,
        }

    def start(self, log: Path) -> None:
        environment = self._environment()
        bin_dir = Path(sys.executable).parent
        subprocess.run(
            [bin_dir / "flask", "--app", "nnote", "db", "upgrade"],
            env=environment,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        self.process = subprocess.Popen(
            [bin_dir / "gunicorn", "--config", "gunicorn.conf.py"],
            env=environment,
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1).ok, 30, "gunicorn")

    def stop(self) -> int:
        """SIGTERM, as ECS sends it; returns gunicorn's exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code
