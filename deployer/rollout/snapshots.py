"""Snapshots before a migration: with `db.snapshot_before_migrate`, a release that changes the
schema first takes a manual RDS snapshot named after it (`<prefix>-release-<revision>`),
waits until it is available, and keeps the newest `db.snapshots_keep`. Each is tagged with
the release and the schema it holds, so `releases` and a forced `rollback` can name the one
to restore from. They outlive `down` unless it is asked to delete them.

A snapshot takes minutes on a real instance (the first one copies the whole volume; later
ones only the changed blocks), and RDS takes one at a time per instance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from deployer.aws import absent, call, paginate
from deployer.errors import DeployError
from deployer.inventory import tags_as_dict
from deployer.steps.base import wait_for

if TYPE_CHECKING:
    from deployer.steps.base import Run

COMPONENT = "database"
RELEASE_TAG = "nnote:release"
SCHEMA_TAG = "nnote:schema"
EMPTY = "none"
# A snapshot taken while a migration was unfinished: it holds no schema a rollback can name.
UNSURE = "unknown"
MISSING = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault")
TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Snapshot:
    name: str
    release: int | None
    schema: str | None  # the schema head the database had when it was taken
    status: str
    created: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.name,
            "release": self.release,
            "schema": self.schema,
            "status": self.status,
            "created": self.created.isoformat() if self.created else None,
        }


def name_for(run: Run, revision: str) -> str:
    # RDS: letters, digits and single hyphens, starting with a letter; prefix is app-env.
    return f"{run.config.prefix}-release-{revision}"


def take(run: Run, revision: str, schema: str | None, sure: bool = True) -> str:
    """A manual snapshot of the environment's database before `revision` migrates it."""
    name = name_for(run, revision)
    if _describe(run, name) is None:
        # RDS snapshots only an `available` instance: not one backing up or being modified.
        _wait(run, f"waiting for database {run.config.prefix} to be available", _instance_ready)
        tags = [
            *run.owner.tags(COMPONENT),
            {"Key": RELEASE_TAG, "Value": revision},
            # Taken only of a database that serves: no schema on record is an unknown one.
            {"Key": SCHEMA_TAG, "Value": schema if schema and sure else UNSURE},
        ]
        absent(  # a resent request finds the snapshot its first send made
            run.aws,
            "rds",
            "create_db_snapshot",
            ("DBSnapshotAlreadyExists", "DBSnapshotAlreadyExistsFault"),
            DBSnapshotIdentifier=name,
            DBInstanceIdentifier=run.config.prefix,
            Tags=tags,
        )
    run.note(COMPONENT, f"snapshot {name} before the migration")
    _wait(run, f"waiting for snapshot {name}", lambda r: _available(r, name))
    prune(run, run.config.settings.db.snapshots_keep)
    return name


def _wait(run: Run, waiting: str, ready: Callable[[Run], bool | None]) -> None:
    wait_for(
        run,
        COMPONENT,
        lambda: ready(run),
        waiting,
        TIMEOUT_SECONDS,
        lambda waited: DeployError(
            f"gave up {waiting} after {waited:.0f}s; nothing was migrated",
            "see the database's events in the RDS console, then run `nnote-deploy up` again",
        ),
    )


def _instance_ready(run: Run) -> bool | None:
    answer = call(run.aws, "rds", "describe_db_instances", DBInstanceIdentifier=run.config.prefix)
    return True if answer["DBInstances"][0].get("DBInstanceStatus") == "available" else None


def _describe(run: Run, name: str) -> dict[str, Any] | None:
    answer = absent(run.aws, "rds", "describe_db_snapshots", MISSING, DBSnapshotIdentifier=name)
    found = (answer or {}).get("DBSnapshots") or []
    return dict(found[0]) if found else None


def _available(run: Run, name: str) -> bool | None:
    snapshot = _describe(run, name)
    status = (snapshot or {}).get("Status")
    if status in ("failed", "deleting"):
        raise DeployError(
            f"snapshot {name} is {status}; nothing was migrated",
            "see the instance's events in the RDS console",
        )
    return True if status == "available" else None


def listed(run: Run) -> list[Snapshot]:
    """The release snapshots of this environment's database, newest first."""
    found = paginate(
        run.aws,
        "rds",
        "describe_db_snapshots",
        "DBSnapshots",
        DBInstanceIdentifier=run.config.prefix,
        SnapshotType="manual",
    )
    snapshots = [_parsed(s) for s in found if _is_release_snapshot(run, s)]
    return sorted(snapshots, key=lambda s: (s.created is not None, s.created), reverse=True)


def _is_release_snapshot(run: Run, snapshot: dict[str, Any]) -> bool:
    name = str(snapshot.get("DBSnapshotIdentifier", ""))
    return name.startswith(f"{run.config.prefix}-release-") and run.owner.owns(
        snapshot.get("TagList")
    )


def _parsed(snapshot: dict[str, Any]) -> Snapshot:
    tags = tags_as_dict(snapshot.get("TagList"))
    release = tags.get(RELEASE_TAG, "")
    schema = tags.get(SCHEMA_TAG)
    return Snapshot(
        name=snapshot["DBSnapshotIdentifier"],
        release=int(release) if release.isdigit() else None,
        schema=None if schema in (None, EMPTY, UNSURE) else schema,
        status=str(snapshot.get("Status", "?")),
        created=snapshot.get("SnapshotCreateTime"),
    )


def prune(run: Run, keep: int) -> list[str]:
    """Delete all but the newest `keep` release snapshots; the names deleted."""
    old = [s.name for s in listed(run)[keep:] if s.status == "available"]
    for name in old:
        delete(run, name)
        run.note(COMPONENT, f"deleted snapshot {name} (keeping the newest {keep})")
    return old


def delete(run: Run, name: str) -> None:
    absent(run.aws, "rds", "delete_db_snapshot", MISSING, DBSnapshotIdentifier=name)


def before_schema(found: list[Snapshot], schema: str | None) -> Snapshot | None:
    """The newest snapshot that holds the database at `schema` (taken before it changed)."""
    if schema is None:
        return None  # an unrecorded schema is no snapshot's
    return next((s for s in found if s.schema == schema), None)
