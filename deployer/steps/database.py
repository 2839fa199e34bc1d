"""database: a DB subnet group and an RDS MySQL instance that is not publicly accessible,
encrypted, and whose master password RDS keeps in Secrets Manager (never in our hands).
"""

from __future__ import annotations

import time
from typing import Any

from deployer.aws import AwsError, absent, call, retry_while
from deployer.errors import DeployError, NotOwnedError
from deployer.inventory import Resource
from deployer.schema import database_schema
from deployer.steps.base import Change, Observed, Outputs, Refusal, Run, Step, undo_ignoring

COMPONENT = "database"
INSTANCE_MISSING = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
GROUP_MISSING = ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound")
WAIT_LIMIT_SECONDS = 3600
# States in which RDS cannot take a final snapshot, and never will: it can only delete the
# instance without one. (A `creating` instance cannot be snapshotted either, until it is up.)
FAILED_STATES = (
    "failed",
    "incompatible-restore",
    "incompatible-network",
    "inaccessible-encryption-credentials",
)


def _rds(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "rds", operation, **params)


class DatabaseStep(Step):
    name = COMPONENT
    depends_on = ("network",)

    def observe(self, run: Run) -> Observed:
        name = run.config.prefix
        instances = absent(
            run.aws, "rds", "describe_db_instances", INSTANCE_MISSING, DBInstanceIdentifier=name
        )
        instance = (instances or {}).get("DBInstances", [None])[0]
        if instance is not None and not run.owner.owns(instance.get("TagList")):
            raise NotOwnedError(
                f"DB instance {name} exists but is not managed by nnote-deploy",
                "rename the app or env in deploy.toml; nnote-deploy never touches it",
            )
        groups = absent(
            run.aws, "rds", "describe_db_subnet_groups", GROUP_MISSING, DBSubnetGroupName=name
        )
        group = (groups or {}).get("DBSubnetGroups", [None])[0]
        if group is not None and not self._group_is_ours(run, group, instance):
            raise NotOwnedError(
                f"DB subnet group {name} exists but is not managed by nnote-deploy",
                "rename the app or env in deploy.toml, or remove that group",
            )
        return {"group": group, "instance": instance}

    def _group_is_ours(
        self, run: Run, group: dict[str, Any], instance: dict[str, Any] | None
    ) -> bool:
        """The group our own instance lives in was made with it; only a group without our
        instance needs its tags read (one call fewer on every converged run)."""
        in_use = (instance or {}).get("DBSubnetGroup", {}).get("DBSubnetGroupName")
        if in_use == group["DBSubnetGroupName"]:
            return True
        tags = _rds(run, "list_tags_for_resource", ResourceName=group["DBSubnetGroupArn"])
        return run.owner.owns(tags["TagList"])

    def resources(self, observed: Observed) -> list[Resource]:
        found = []
        if observed["group"]:
            found.append(
                Resource(
                    COMPONENT,
                    "rds:subgrp",
                    observed["group"]["DBSubnetGroupName"],
                    observed["group"].get("SubnetGroupStatus", "exists"),
                )
            )
        if observed["instance"]:
            found.append(
                Resource(
                    COMPONENT,
                    "rds:db",
                    observed["instance"]["DBInstanceIdentifier"],
                    observed["instance"]["DBInstanceStatus"],
                )
            )
        return found

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        name = run.config.prefix
        changes = []
        if observed["group"] is None:
            changes.append(Change(COMPONENT, "create", "rds:subgrp", name))
        instance = observed["instance"]
        if _being_deleted(instance):
            changes.append(
                Change(COMPONENT, "create", "rds:db", name, "after the one being deleted is gone")
            )
        elif instance is None:
            db = run.config.settings.db
            changes.append(
                Change(
                    COMPONENT,
                    "create",
                    "rds:db",
                    name,
                    f"MySQL {db.engine_version} {db.instance_class}, private, encrypted",
                )
            )
        else:
            changes += [
                Change(COMPONENT, "update", "rds:db", name, f"{key} {old} -> {new}")
                for key, (old, new) in self._drift(run, instance).items()
            ]
        return changes

    @staticmethod
    def wanted(run: Run) -> dict[str, Any]:
        db = run.config.settings.db
        return {
            "BackupRetentionPeriod": db.backup_retention_days,
            "MultiAZ": db.multi_az,
            "DeletionProtection": db.deletion_protection,
            "DBInstanceClass": db.instance_class,
            "PubliclyAccessible": False,
        }

    def _drift(self, run: Run, instance: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {
            key: (instance.get(key), value)
            for key, value in self.wanted(run).items()
            if instance.get(key) != value
        }

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        network = inputs["network"]
        observed = self.observe(run)
        instance = observed["instance"]
        if _being_deleted(instance):
            # A `down` moments ago: RDS releases the name only once the instance is gone.
            self._wait_deleted(run, run.config.prefix)
            observed, instance = self.observe(run), None
        if observed["group"] is None:
            self._create_group(run, network["subnet_ids"])
        if instance is None:
            self._create_instance(run, network["security_groups"]["db"])
        else:
            self._converge(run, instance, network["security_groups"]["db"])
        instance = self._wait_available(run)
        self._protect_once_available(run, instance)
        return {
            "host": instance["Endpoint"]["Address"],
            "port": instance["Endpoint"]["Port"],
            "name": run.config.settings.db.name,
            "secret_arn": instance["MasterUserSecret"]["SecretArn"],
            "arn": instance["DBInstanceArn"],
            "schema": database_schema(instance.get("TagList")),
        }

    def _create_group(self, run: Run, subnet_ids: list[str]) -> None:
        name = run.config.prefix
        _rds(
            run,
            "create_db_subnet_group",
            DBSubnetGroupName=name,
            SubnetIds=subnet_ids,
            DBSubnetGroupDescription=f"nnote {run.config.env} database subnets",
            Tags=run.owner.tags(COMPONENT),
        )
        run.journal.record(
            COMPONENT,
            f"created DB subnet group {name}",
            undo_ignoring(
                GROUP_MISSING, lambda: _rds(run, "delete_db_subnet_group", DBSubnetGroupName=name)
            ),
            made=("rds:subgrp", name),
        )

    def _create_instance(self, run: Run, group_id: str) -> None:
        db, name = run.config.settings.db, run.config.prefix
        _rds(
            run,
            "create_db_instance",
            DBInstanceIdentifier=name,
            Engine="mysql",
            EngineVersion=engine_version(run),
            EngineLifecycleSupport=(
                "open-source-rds-extended-support"
                if db.extended_support
                else "open-source-rds-extended-support-disabled"
            ),
            DBInstanceClass=db.instance_class,
            AllocatedStorage=db.allocated_storage_gb,
            # Said, not left to RDS's default (gp2 before gp3): what `cost` prices.
            StorageType="gp3",
            DBName=db.name,
            MasterUsername=db.username,
            ManageMasterUserPassword=True,
            VpcSecurityGroupIds=[group_id],
            DBSubnetGroupName=name,
            PubliclyAccessible=False,
            StorageEncrypted=True,
            MultiAZ=db.multi_az,
            BackupRetentionPeriod=db.backup_retention_days,
            # Protected once available (see _protect_once_available): RDS refuses to change a
            # creating instance, so a rollback could not otherwise delete it.
            DeletionProtection=False,
            CopyTagsToSnapshot=True,
            Tags=run.owner.tags(COMPONENT),
        )
        run.journal.record(
            COMPONENT,
            f"created DB instance {name}",
            lambda: self._delete_instance(run, final_snapshot=False, unprotect=True),
            made=("rds:db", name),
        )
        run.note(COMPONENT, f"creating DB instance {name} (RDS takes several minutes)")

    def _protect_once_available(self, run: Run, instance: dict[str, Any]) -> None:
        """Deletion protection for a new instance, set as soon as RDS lets us (the creation's
        journal entry turns it off again before deleting)."""
        wanted = run.config.settings.db.deletion_protection
        if wanted and not instance.get("DeletionProtection"):
            _rds(
                run,
                "modify_db_instance",
                DBInstanceIdentifier=instance["DBInstanceIdentifier"],
                DeletionProtection=True,
                ApplyImmediately=True,
            )

    def _converge(self, run: Run, instance: dict[str, Any], group_id: str) -> None:
        drift = self._drift(run, instance)
        groups = [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups", [])]
        changes: dict[str, Any] = {key: new for key, (_old, new) in drift.items()}
        if groups != [group_id]:
            changes["VpcSecurityGroupIds"] = [group_id]
        if not changes:
            return
        name = instance["DBInstanceIdentifier"]
        _rds(run, "modify_db_instance", DBInstanceIdentifier=name, ApplyImmediately=True, **changes)
        previous = {key: old for key, (old, _new) in drift.items()}
        if "VpcSecurityGroupIds" in changes:
            previous["VpcSecurityGroupIds"] = groups
        run.journal.record(
            COMPONENT,
            f"changed DB instance {name}: {', '.join(changes)}",
            lambda: _rds(
                run,
                "modify_db_instance",
                DBInstanceIdentifier=name,
                ApplyImmediately=True,
                **previous,
            ),
        )

    def _wait_available(self, run: Run) -> dict[str, Any]:
        name, started = run.config.prefix, time.monotonic()
        while True:
            instance = _rds(run, "describe_db_instances", DBInstanceIdentifier=name)["DBInstances"][
                0
            ]
            status = instance["DBInstanceStatus"]
            if status == "available" and instance.get("Endpoint"):
                return dict(instance)
            if status in (
                "failed",
                "incompatible-parameters",
                "incompatible-network",
                "storage-full",
            ):
                raise DeployError(f"DB instance {name} is {status}", "see the RDS console events")
            elapsed = time.monotonic() - started
            if elapsed > WAIT_LIMIT_SECONDS:
                raise DeployError(
                    f"DB instance {name} not available after {elapsed:.0f}s",
                    "run up again later; it resumes",
                )
            run.note(COMPONENT, f"DB instance {name}: {status} ({elapsed:.0f}s)")
            run.sleep()

    def refusals(self, run: Run, observed: Observed) -> list[Refusal]:
        """What would stop `down` at the database, known before anything is deleted."""
        instance, name = observed["instance"], run.config.prefix
        if instance is None or _being_deleted(instance):
            return []
        found = []
        if instance.get("DeletionProtection"):
            found.append(
                Refusal(
                    f"DB instance {name} has deletion protection on",
                    "set db.deletion_protection = false for this env, run up, then down",
                )
            )
        status = instance["DBInstanceStatus"]
        if run.config.settings.db.final_snapshot and status in FAILED_STATES:
            found.append(
                Refusal(
                    f"DB instance {name} is {status}: RDS cannot take the final snapshot that "
                    "db.final_snapshot asks for",
                    "set db.final_snapshot = false for this env to delete it without one",
                )
            )
        return found

    def destroy(self, run: Run, observed: Observed) -> None:
        instance = observed["instance"]
        if run.delete_snapshots:
            from deployer.rollout import snapshots

            for snapshot in snapshots.listed(run):
                if snapshot.status != "available":  # RDS deletes only available snapshots
                    run.note(COMPONENT, f"snapshot {snapshot.name} is {snapshot.status}: kept")
                    continue
                snapshots.delete(run, snapshot.name)
                run.note(COMPONENT, f"deleted snapshot {snapshot.name}")
        if instance and not _being_deleted(instance):
            self._delete_instance(run, final_snapshot=run.config.settings.db.final_snapshot)
        elif instance:
            self._wait_deleted(run, run.config.prefix)
        if observed["group"] or instance:
            # AWS keeps the group "in use" for a while after the instance reports deleted.
            retry_while(
                ("InvalidDBSubnetGroupStateFault",),
                run.dependency_budget_seconds,
                undo_ignoring(
                    GROUP_MISSING,
                    lambda: _rds(
                        run, "delete_db_subnet_group", DBSubnetGroupName=run.config.prefix
                    ),
                ),
                lambda code, left: run.note(
                    COMPONENT, f"subnet group still in use ({code}); {left:.0f}s left"
                ),
                delay=min(5.0, run.poll_seconds),
                sleep=run.sleep,
            )

    def _delete_instance(self, run: Run, final_snapshot: bool, unprotect: bool = False) -> None:
        """Delete, waiting while RDS refuses because the instance is busy (creating,
        modifying, backing up); say why when it refuses for good."""
        name, started = run.config.prefix, time.monotonic()
        while True:
            try:
                self._request_deletion(run, final_snapshot, unprotect)
                break
            except AwsError as error:
                if error.code in INSTANCE_MISSING:
                    return
                if "already being deleted" in error.message:
                    break
                if error.code != "InvalidDBInstanceState":
                    raise
                self._wait_until_deletable(run, error, started)
        if final_snapshot:
            run.note(COMPONENT, f"final snapshot {self.final_snapshot_name(run)} is kept")
        self._wait_deleted(run, name)

    def _request_deletion(self, run: Run, final_snapshot: bool, unprotect: bool) -> None:
        name = run.config.prefix
        if unprotect and self._protected(run):
            _rds(
                run,
                "modify_db_instance",
                DBInstanceIdentifier=name,
                DeletionProtection=False,
                ApplyImmediately=True,
            )
        snapshot = (
            {"FinalDBSnapshotIdentifier": self.final_snapshot_name(run)}
            if final_snapshot
            else {"SkipFinalSnapshot": True}
        )
        _rds(
            run,
            "delete_db_instance",
            DBInstanceIdentifier=name,
            DeleteAutomatedBackups=not final_snapshot,
            **snapshot,
        )

    def _wait_until_deletable(self, run: Run, refused: AwsError, started: float) -> None:
        name, status = run.config.prefix, self._status(run)
        elapsed = time.monotonic() - started
        if status in (None, "deleting"):
            return
        if status in FAILED_STATES or elapsed > WAIT_LIMIT_SECONDS:
            raise DeployError(
                f"RDS refused to delete DB instance {name} ({status}): {refused.message}",
                "see the instance's events in the RDS console; with db.final_snapshot = false "
                "RDS can delete it in any state",
            ) from refused
        run.note(COMPONENT, f"DB instance {name} is {status}; deleting it once RDS allows")
        run.sleep()

    @staticmethod
    def final_snapshot_name(run: Run) -> str:
        return f"{run.config.prefix}-final-{run.owner.run_id}".lower()

    def _status(self, run: Run) -> str | None:
        instance = self._instance(run)
        return str(instance["DBInstanceStatus"]) if instance else None

    def _protected(self, run: Run) -> bool:
        instance = self._instance(run)
        return bool(instance and instance.get("DeletionProtection"))

    def _instance(self, run: Run) -> dict[str, Any] | None:
        found = absent(
            run.aws,
            "rds",
            "describe_db_instances",
            INSTANCE_MISSING,
            DBInstanceIdentifier=run.config.prefix,
        )
        return dict(found["DBInstances"][0]) if found else None

    def _wait_deleted(self, run: Run, name: str) -> None:
        started = time.monotonic()
        while self._instance(run):
            if time.monotonic() - started > WAIT_LIMIT_SECONDS:
                raise DeployError(f"DB instance {name} still deleting", "run down again later")
            run.note(COMPONENT, f"deleting DB instance {name} ({time.monotonic() - started:.0f}s)")
            run.sleep()


def _being_deleted(instance: dict[str, Any] | None) -> bool:
    return instance is not None and instance.get("DBInstanceStatus") == "deleting"


def engine_version(run: Run) -> str:
    """The exact MySQL version to create: a major version ("8.4") takes the region's default
    minor version, asked of RDS so that a version the region lacks fails before anything."""
    wanted = run.config.settings.db.engine_version
    if wanted.count(".") == 2:
        return wanted
    versions = _rds(
        run, "describe_db_engine_versions", Engine="mysql", EngineVersion=wanted, DefaultOnly=True
    )["DBEngineVersions"]
    if not versions:
        raise DeployError(
            f"RDS offers no MySQL {wanted} in {run.aws.region}",
            "set db.engine_version in deploy.toml to a version the region offers",
        )
    return str(versions[0]["EngineVersion"])
