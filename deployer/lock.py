"""One run at a time per environment: a leased lock held in an SSM parameter.

`put_parameter(Overwrite=False)` either creates the parameter (we hold the lock) or fails
with ParameterAlreadyExists (someone else does): an atomic test-and-set that needs no table
and no bucket. The value records run id, owner and the lease's first expiry, and is never
rewritten. The holder renews the lease from a background thread by writing a heartbeat
parameter of its own (`<lock>-lease-<run>`), so a live run's lock never expires however slow
the run, and an expired lease means the holder died (SIGKILL, a cancelled CI runner): the next
run takes the lock over on its own. Renewing into a parameter of its own is what keeps an
`unlock` standing: SSM has no conditional put, so a renewal that overwrote the lock itself
could land just after an unlock and quietly take the lock back. The takeover itself is made
exclusive by creating a marker parameter named after the dead run, so of two runs finding the
same dead lock only one wins. Limits: SSM is regional, so the lock is per region; a holder
cut off from AWS for a whole lease loses its lock.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from deployer.aws import Aws, AwsError, absent, call
from deployer.errors import LockedError
from deployer.inventory import Owner, Resource

DEFAULT_LEASE_SECONDS = 120.0
RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # characters an SSM parameter name allows


def lock_name(owner: Owner) -> str:
    return f"/nnote-deploy/{owner.app}/{owner.env}/lock"


def heartbeat_name(owner: Owner, run: object) -> str | None:
    """Where run `run` renews its lease on the lock of `owner`'s environment; None for a lock
    value without a run id (unreadable, or written by hand)."""
    if not isinstance(run, str) or not run:
        return None
    if not RUN_ID.fullmatch(run):  # characters a parameter name cannot hold
        run = "h" + hashlib.sha256(run.encode()).hexdigest()[:24]
    return f"{lock_name(owner)}-lease-{run}"


def lease_seconds() -> float:
    return float(os.environ.get("NNOTE_DEPLOY_LOCK_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)


def whoami() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"github:{actor}"
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _expired(holder: dict[str, Any]) -> bool:
    """An expiry that cannot be read counts as long past."""
    return (_expiry(holder) or 0.0) < time.time()


@dataclass
class Lock:
    aws: Aws
    owner: Owner
    lease: float = field(default_factory=lease_seconds)
    _since: str = ""
    waited: bool = False  # another run held it first: what it did may change our plan
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None
    _beating: bool = False  # our heartbeat parameter may exist: release deletes it
    _beat_created: bool = False  # it does exist: renewals overwrite it

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
            if not self._delete_heartbeat(dead.get("run")):
                return False  # nothing taken yet: the next poll tries again
            self._delete(lock_name(self.owner))
            return self._put(lock_name(self.owner), self._value())
        finally:
            self._delete(marker)

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._beating = self._beat_created = False
        self._renewer = threading.Thread(target=self._renew, name="lock-renewer", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 4):
            try:
                if not self._still_ours():
                    return  # broken with `unlock`, or taken over: not ours to renew
                if self._beat() and not self._still_ours():
                    return  # an unlock landed between our check and the heartbeat's creation
            except AwsError:
                continue  # a missed renewal is retried; the lease has slack for three

    def _still_ours(self) -> bool:
        """Whether the lock still names this run; if not, our heartbeat goes too."""
        recorded = self._recorded()
        if recorded is not None and recorded.get("run") == self.owner.run_id:
            return True
        if self._beating and self._delete_heartbeat(self.owner.run_id):
            self._beating = self._beat_created = False
        return False

    def _beat(self) -> bool:
        """Push our lease's expiry forward in our own heartbeat parameter, created (tagged) on
        the first renewal, so that a run shorter than a quarter lease never writes one.
        Returns whether this call created it."""
        name = heartbeat_name(self.owner, self.owner.run_id)
        assert name is not None, "a run always has an id"
        value = json.dumps({"run": self.owner.run_id, "expires": time.time() + self.lease})
        self._beating = True  # it may exist from here on, even if this call's answer is lost
        if not self._beat_created:  # created tagged, as the policy requires of every put
            created = self._put(name, value)
            self._beat_created = True
            if created:
                return True
        self._put(name, value, overwrite=True)
        return False

    def _recorded(self) -> dict[str, Any] | None:
        """The lock parameter's value as its holder wrote it when taking the lock."""
        answer = self._get(lock_name(self.owner))
        if answer is None:
            return None
        try:
            return dict(json.loads(answer))
        except (ValueError, TypeError):
            return {"run": "?", "owner": "unreadable lock value", "expires": 0}

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock and until when: the lease's expiry is the later of the lock's
        first one and the holder's last heartbeat."""
        holder = self._recorded()
        name = heartbeat_name(self.owner, holder.get("run")) if holder else None
        if holder is None or name is None:
            return holder
        renewed = _expiry(self._get(name))
        if renewed is not None and renewed > (_expiry(holder) or 0.0):
            holder["expires"] = renewed
        return holder

    def release(self) -> None:
        """End this run's hold: stop renewing, delete the lock if it is still ours, then our
        heartbeat (best effort: once the lock is gone, a heartbeat left behind holds nothing,
        and `down` deletes it)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        recorded = self._recorded()
        if recorded is not None and recorded.get("run") == self.owner.run_id:
            self._delete(lock_name(self.owner))
        if self._beating:
            self._delete_heartbeat(self.owner.run_id)

    def force_release(self, holder: dict[str, Any] | None = None) -> None:
        """Break the lock (`nnote-deploy unlock`), and the heartbeat of `holder`, its holder
        (best effort, as in `release`)."""
        self._delete(lock_name(self.owner))
        if holder is not None:
            self._delete_heartbeat(holder.get("run"))

    def sweep(self, leftovers: list[Resource]) -> tuple[list[Resource], list[Resource]]:
        """Delete the lock parameters that runs which died left behind (a heartbeat, a
        takeover marker), all but this run's own: (deleted, those that could not be)."""
        own = {lock_name(self.owner), heartbeat_name(self.owner, self.owner.run_id)}
        deleted, failed = [], []
        for resource in leftovers:
            if f"/{resource.id}" in own:
                continue
            try:
                self._delete(f"/{resource.id}")
                deleted.append(resource)
            except AwsError:
                failed.append(resource)
        return deleted, failed

    def _delete_heartbeat(self, run: object) -> bool:
        """Delete run `run`'s heartbeat if it has one; whether none is left. The policy lets
        us delete only what is tagged as ours, so deleting a parameter that is not there is
        denied, not ignored: look first."""
        name = heartbeat_name(self.owner, run)
        try:
            if name is not None and self._get(name) is not None:
                self._delete(name)
            return True
        except AwsError:
            return False

    def _get(self, name: str) -> str | None:
        answer = absent(self.aws, "ssm", "get_parameter", ("ParameterNotFound",), Name=name)
        return None if answer is None else str(answer["Parameter"]["Value"])

    def _delete(self, name: str) -> None:
        absent(self.aws, "ssm", "delete_parameter", ("ParameterNotFound",), Name=name)


def _expiry(value: object) -> float | None:
    """The `expires` of a lock or heartbeat value (a dict or its JSON), if it can be read."""
    try:
        data = json.loads(value) if isinstance(value, str) else value
        return float(data["expires"])  # type: ignore[index]
    except (ValueError, TypeError, KeyError):
        return None
