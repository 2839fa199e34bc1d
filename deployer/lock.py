"""One run at a time per environment: a leased lock held in an SSM parameter.

`put_parameter(Overwrite=False)` either creates the parameter (we hold the lock) or fails
with ParameterAlreadyExists (someone else does): an atomic test-and-set that needs no table
and no bucket. The value records run id, owner and the lease's expiry. The holder renews the
lease from a background thread, so a live run's lock never expires however slow the run,
and an expired lease means the holder died (SIGKILL, a cancelled CI runner): the next run
takes the lock over on its own. The takeover itself is made exclusive by creating a marker
parameter named after the dead run, so of two runs finding the same dead lock only one wins.
Limits: SSM is regional, so the lock is per region; a holder cut off from AWS for a whole
lease loses its lock.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from deployer.aws import Aws, AwsError, absent, call
from deployer.errors import LockedError
from deployer.inventory import Owner

DEFAULT_LEASE_SECONDS = 120.0


def lock_name(owner: Owner) -> str:
    return f"/nnote-deploy/{owner.app}/{owner.env}/lock"


def lease_seconds() -> float:
    return float(os.environ.get("NNOTE_DEPLOY_LOCK_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)


def whoami() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"github:{actor}"
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _expired(holder: dict[str, Any]) -> bool:
    try:
        return float(holder.get("expires", 0)) < time.time()
    except (TypeError, ValueError):
        return True


@dataclass
class Lock:
    aws: Aws
    owner: Owner
    lease: float = field(default_factory=lease_seconds)
    _since: str = ""
    waited: bool = False  # another run held it first: what it did may change our plan
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    def acquire(self, wait_seconds: float = 0, poll: float = 5.0) -> dict[str, Any] | None:
        """Take the lock, waiting up to `wait_seconds`; returns the dead holder it took
        over, if any. Raises LockedError naming the live holder."""
        deadline = time.monotonic() + wait_seconds
        self._since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        while True:
            holder = self._try_put()
            if holder is None:
                self._start_renewing()
                return None
            if _expired(holder) and self._take_over(holder):
                self._start_renewing()
                return holder
            self.waited = True
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"{self.owner.app}/{self.owner.env} is locked by run {holder.get('run', '?')} "
                    f"({holder.get('owner', '?')}) since {holder.get('since', '?')}",
                    "wait for that run to finish or pass --lock-wait SECONDS; a run that died "
                    f"loses the lock {self.lease:.0f}s after its last renewal, "
                    "or break it now with `nnote-deploy unlock`",
                )
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.05)))

    def _value(self) -> str:
        return json.dumps(
            {
                "run": self.owner.run_id,
                "owner": whoami(),
                "since": self._since,
                "expires": time.time() + self.lease,
            }
        )

    def _put(self, name: str, value: str, overwrite: bool = False) -> bool:
        """Create (or with `overwrite`, replace) a parameter; False if it already exists."""
        try:
            call(
                self.aws,
                "ssm",
                "put_parameter",
                Name=name,
                Value=value,
                Type="String",
                Overwrite=overwrite,
                **({} if overwrite else {"Tags": self.owner.tags("lock")}),
            )
            return True
        except AwsError as error:
            if error.code != "ParameterAlreadyExists":
                raise
            return False

    def _try_put(self) -> dict[str, Any] | None:
        if self._put(lock_name(self.owner), self._value()):
            return None
        return self.holder() or {"run": "?", "expires": time.time() + self.lease}

    def _take_over(self, dead: dict[str, Any]) -> bool:
        marker = f"{lock_name(self.owner)}-takeover-{dead.get('run', 'unknown')}"
        if not self._put(marker, json.dumps({"run": self.owner.run_id})):
            return False  # another run is taking over the same dead lock
        try:
            if self.holder() != dead:
                return False  # renewed or replaced after all
            self._delete(lock_name(self.owner))
            return self._put(lock_name(self.owner), self._value())
        finally:
            self._delete(marker)

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="lock-renewer", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 4):
            try:
                holder = self.holder()
                if holder is None or holder.get("run") != self.owner.run_id:
                    return  # broken with `unlock`: not ours to renew
                self._put(lock_name(self.owner), self._value(), overwrite=True)
            except AwsError:
                continue  # a missed renewal is retried; the lease has slack for three

    def holder(self) -> dict[str, Any] | None:
        answer = absent(
            self.aws, "ssm", "get_parameter", ("ParameterNotFound",), Name=lock_name(self.owner)
        )
        if answer is None:
            return None
        try:
            return dict(json.loads(answer["Parameter"]["Value"]))
        except (ValueError, TypeError):
            return {"run": "?", "owner": "unreadable lock value", "expires": 0}

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        holder = self.holder()
        if holder is not None and holder.get("run") == self.owner.run_id:
            self.force_release()

    def force_release(self) -> None:
        self._delete(lock_name(self.owner))

    def _delete(self, name: str) -> None:
        absent(self.aws, "ssm", "delete_parameter", ("ParameterNotFound",), Name=name)
