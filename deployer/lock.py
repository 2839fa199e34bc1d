"""One run at a time per environment: a lock held in an SSM parameter.

`put_parameter(Overwrite=False)` either creates the parameter (we hold the lock) or fails
with ParameterAlreadyExists (someone else does): an atomic test-and-set that needs no table
and no bucket. The value records run id, owner and expiry. Limits: SSM is regional, so the
lock is per region; an expired lock is not taken over silently, it must be broken with
`nnote-deploy unlock` (a crashed run's lock cannot be told from a slow run's by time alone);
release reads then deletes, so a lock broken and re-taken in between could be deleted.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from deployer.aws import Aws, AwsError, absent, call
from deployer.errors import LockedError
from deployer.inventory import Owner

LOCK_TTL_SECONDS = 2 * 3600


def lock_name(owner: Owner) -> str:
    return f"/nnote-deploy/{owner.app}/{owner.env}/lock"


def whoami() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"github:{actor}"
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class Lock:
    aws: Aws
    owner: Owner

    def acquire(self, wait_seconds: float = 0, poll: float = 5.0) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            holder = self._try_put()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"{self.owner.app}/{self.owner.env} is locked by run {holder.get('run', '?')} "
                    f"({holder.get('owner', '?')}) since {holder.get('since', '?')}",
                    self._hint(holder),
                )
            time.sleep(poll)

    def _try_put(self) -> dict[str, Any] | None:
        value = json.dumps(
            {
                "run": self.owner.run_id,
                "owner": whoami(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "expires": int(time.time()) + LOCK_TTL_SECONDS,
            }
        )
        try:
            call(
                self.aws,
                "ssm",
                "put_parameter",
                Name=lock_name(self.owner),
                Value=value,
                Type="String",
                Overwrite=False,
                Tags=self.owner.tags("lock"),
            )
            return None
        except AwsError as error:
            if error.code != "ParameterAlreadyExists":
                raise
        return self.holder() or {"run": "?"}

    def _hint(self, holder: dict[str, Any]) -> str:
        if int(holder.get("expires", 0)) < time.time():
            return "the lock has expired (a crashed run?): break it with `nnote-deploy unlock`"
        return (
            "wait for that run to finish, pass --lock-wait SECONDS, "
            "or `nnote-deploy unlock` if it died"
        )

    def holder(self) -> dict[str, Any] | None:
        answer = absent(
            self.aws, "ssm", "get_parameter", ("ParameterNotFound",), Name=lock_name(self.owner)
        )
        if answer is None:
            return None
        try:
            return dict(json.loads(answer["Parameter"]["Value"]))
        except (ValueError, TypeError):
            return {"run": "?", "owner": "unreadable lock value"}

    def release(self) -> None:
        holder = self.holder()
        if holder is not None and holder.get("run") == self.owner.run_id:
            self.force_release()

    def force_release(self) -> None:
        absent(
            self.aws, "ssm", "delete_parameter", ("ParameterNotFound",), Name=lock_name(self.owner)
        )
