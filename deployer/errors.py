"""The deployer's errors and exit codes. A leaf module: it imports nothing of ours.

Every error carries a one-line message and a hint; the CLI renders them once, at the top,
and shows a traceback only with --verbose.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # AWS or other failure
    CHANGES = 2  # plan --detailed-exitcode: changes pending
    CONFIG = 3  # deploy.toml or command line is wrong; no AWS call was made
    LOCKED = 4  # another run holds the environment's lock
    LEAKS = 5  # down finished but the leak audit found resources
    ROLLED_BACK = 6  # up failed; what this run did was undone
    INTERRUPTED = 130


class DeployError(Exception):
    """An error a user can act on: what went wrong, and what to do about it."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, hint: str = "", *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.request_id = request_id


class ConfigError(DeployError):
    """deploy.toml is wrong; `problems` holds every bad field, each as `path: reason`."""

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, problems: list[str] | None = None, hint: str = "") -> None:
        super().__init__(message, hint or "fix deploy.toml and run the command again")
        self.problems = problems or []


class AwsError(DeployError):
    """An AWS call failed in a way retries did not fix."""

    def __init__(
        self,
        message: str,
        hint: str,
        *,
        code: str = "",
        operation: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint, request_id=request_id)
        self.code = code
        self.operation = operation


class LockedError(DeployError):
    exit_code = ExitCode.LOCKED


class NotOwnedError(DeployError):
    """A resource with our name exists but carries no nnote tags: we never touch it."""


class Interrupted(DeployError):
    exit_code = ExitCode.INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted", "run `nnote-deploy up` again to converge")
