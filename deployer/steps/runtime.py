"""runtime: what every task runs with: the ECS cluster, the log group, the task execution role
and task role, the Flask SECRET_KEY in Secrets Manager (generated once, kept across deploys),
and the ECS service-linked role (created on an account's first run).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from deployer import boundary, capacity, inventory
from deployer.aws import AwsError, absent, call, retry_while
from deployer.errors import DeployError, NotOwnedError
from deployer.inventory import Resource, key_of
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring

COMPONENT = "runtime"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
TASK_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
LINKED_ROLE_PATH = "/aws-service-role/ecs.amazonaws.com/"
NO_SUCH = (
    "NoSuchEntity",
    "NoSuchEntityException",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
)


def role_names(run: Run) -> dict[str, str]:
    return inventory.role_names(run.config.prefix)


def secret_name(run: Run) -> str:
    return f"{run.config.app}/{run.config.env}/secret-key"


def log_group(run: Run) -> str:
    return f"/nnote/{run.config.prefix}"


class RuntimeStep(Step):
    name = COMPONENT

    def observe(self, run: Run) -> Observed:
        clusters = call(
            run.aws, "ecs", "describe_clusters", clusters=[run.config.prefix], include=["TAGS"]
        )["clusters"]
        cluster = next((c for c in clusters if c.get("status") == "ACTIVE"), None)
        if cluster is not None and not run.owner.owns(cluster.get("tags")):
            raise NotOwnedError(
                f"ECS cluster {run.config.prefix} is not managed by nnote-deploy",
                "rename the app or env in deploy.toml",
            )
        groups = call(run.aws, "logs", "describe_log_groups", logGroupNamePrefix=log_group(run))
        group = next((g for g in groups["logGroups"] if g["logGroupName"] == log_group(run)), None)
        roles = {kind: self._role(run, name) for kind, name in role_names(run).items()}
        secret = self._secret(run)
        return {
            "cluster": cluster,
            "log_group": group,
            "roles": roles,
            "execution_policy": roles["execution"] is None or self._has_execution_policy(run),
            "secret": secret,
        }

    def _secret(self, run: Run) -> dict[str, Any] | None:
        """Our SECRET_KEY secret; None when there is none, or ours is being deleted (Secrets
        Manager deletes in the background, even when forced: a `down` moments ago)."""
        secret = absent(
            run.aws, "secretsmanager", "describe_secret", NO_SUCH, SecretId=secret_name(run)
        )
        if secret is None:
            return None
        if not run.owner.owns(secret.get("Tags")):
            raise NotOwnedError(
                f"secret {secret_name(run)} exists but is not managed by nnote-deploy",
                "rename the app or env in deploy.toml; nnote-deploy never touches it",
            )
        return None if secret.get("DeletedDate") else dict(secret)

    def _has_execution_policy(self, run: Run) -> bool:
        """An interrupted `down` can leave the role with its policy already detached."""
        attached = call(
            run.aws, "iam", "list_attached_role_policies", RoleName=role_names(run)["execution"]
        )["AttachedPolicies"]
        return any(p["PolicyArn"] == EXECUTION_POLICY for p in attached)

    def _role(self, run: Run, name: str) -> dict[str, Any] | None:
        found = absent(run.aws, "iam", "get_role", NO_SUCH, RoleName=name)
        if found is None:
            return None
        if not run.owner.owns(found["Role"].get("Tags")):
            raise NotOwnedError(
                f"IAM role {name} is not managed by nnote-deploy", "rename the app or env"
            )
        return dict(found["Role"])

    def resources(self, observed: Observed) -> list[Resource]:
        found = []
        if observed["cluster"]:
            found.append(
                Resource(
                    COMPONENT,
                    "ecs:cluster",
                    observed["cluster"]["clusterName"],
                    observed["cluster"]["status"],
                )
            )
        if observed["log_group"]:
            found.append(
                Resource(
                    COMPONENT,
                    "logs:log-group",
                    observed["log_group"]["logGroupName"],
                    f"{observed['log_group'].get('retentionInDays', '-')} days",
                )
            )
        found += [
            Resource(COMPONENT, "iam:role", role["RoleName"], "exists")
            for role in observed["roles"].values()
            if role
        ]
        if observed["secret"]:
            found.append(
                Resource(COMPONENT, "secretsmanager:secret", observed["secret"]["Name"], "exists")
            )
        return found

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        prefix = run.config.prefix
        changes = []
        if observed["cluster"] is None:
            changes.append(Change(COMPONENT, "create", "ecs:cluster", prefix))
        elif self._providers_wanted(run, observed["cluster"]):
            added = ", ".join(capacity.missing_providers(observed["cluster"]))
            changes.append(
                Change(COMPONENT, "update", "ecs:cluster", prefix, f"capacity providers + {added}")
            )
        retention = run.config.settings.service.log_retention_days
        if observed["log_group"] is None:
            changes.append(
                Change(COMPONENT, "create", "logs:log-group", log_group(run), f"{retention} days")
            )
        elif observed["log_group"].get("retentionInDays") != retention:
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "logs:log-group",
                    log_group(run),
                    f"retention {observed['log_group'].get('retentionInDays')} -> {retention} days",
                )
            )
        changes += [
            Change(COMPONENT, "create", "iam:role", name)
            for kind, name in role_names(run).items()
            if observed["roles"][kind] is None
        ]
        changes += [
            Change(COMPONENT, "update", "iam:role", name, f"boundary {boundary_name(run)}")
            for kind, name in role_names(run).items()
            if observed["roles"][kind] is not None and not _bounded(run, observed["roles"][kind])
        ]
        if not observed["execution_policy"]:
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "iam:role",
                    role_names(run)["execution"],
                    "attach AmazonECSTaskExecutionRolePolicy",
                )
            )
        if observed["secret"] is None:
            changes.append(
                Change(
                    COMPONENT,
                    "create",
                    "secretsmanager:secret",
                    secret_name(run),
                    "generated SECRET_KEY",
                )
            )
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        observed = self.observe(run)
        self._ensure_linked_role(run)
        cluster_arn = (
            observed["cluster"]["clusterArn"] if observed["cluster"] else self._create_cluster(run)
        )
        if observed["cluster"] and self._providers_wanted(run, observed["cluster"]):
            self._add_providers(run, observed["cluster"])
        self._converge_log_group(run, observed["log_group"])
        roles = {
            kind: (role or self._create_role(run, kind))["Arn"]
            for kind, role in observed["roles"].items()
        }
        for kind, role in observed["roles"].items():
            if role is not None and not _bounded(run, role):
                self._bound(run, role_names(run)[kind])
        if not observed["execution_policy"]:
            self._attach_execution_policy(run, role_names(run)["execution"])
        secret_arn = observed["secret"]["ARN"] if observed["secret"] else self._create_secret(run)
        return {
            "cluster_arn": cluster_arn,
            "cluster": run.config.prefix,
            "log_group": log_group(run),
            "execution_role_arn": roles["execution"],
            "execution_role": role_names(run)["execution"],
            "task_role_arn": roles["task"],
            "app_secret_arn": secret_arn,
        }

    def _ensure_linked_role(self, run: Run) -> None:
        """Account-wide and shared by every ECS user: created when missing, never deleted.

        Checked only when `up` changes something: a converged environment has it already.
        """
        # Found by its path: the role's name differs in case between AWS and emulators.
        if call(run.aws, "iam", "list_roles", PathPrefix=LINKED_ROLE_PATH)["Roles"]:
            return
        try:
            call(run.aws, "iam", "create_service_linked_role", AWSServiceName="ecs.amazonaws.com")
        except AwsError as error:
            if error.code not in ("InvalidInput", "EntityAlreadyExists"):
                raise

    def _create_cluster(self, run: Run) -> str:
        name = run.config.prefix
        cluster = call(
            run.aws,
            "ecs",
            "create_cluster",
            clusterName=name,
            tags=run.owner.lower_tags(COMPONENT),
            settings=[{"name": "containerInsights", "value": "disabled"}],
            # Associated from the start, Spot or not: free, and `service.spot` turned on later
            # needs no change to the cluster. No default strategy: every caller names its own.
            capacityProviders=list(capacity.PROVIDERS),
        )
        run.journal.record(
            COMPONENT,
            f"created ECS cluster {name}",
            lambda: delete_cluster(run),
            made=key_of(cluster["cluster"]["clusterArn"]),
        )
        return str(cluster["cluster"]["clusterArn"])

    @staticmethod
    def _providers_wanted(run: Run, cluster: dict[str, Any]) -> bool:
        """A cluster made before `service.spot` existed lacks the Fargate providers; they
        are added when Spot is wanted (an on-demand service needs none: its launch type)."""
        return run.config.settings.service.spot and bool(capacity.missing_providers(cluster))

    def _add_providers(self, run: Run, cluster: dict[str, Any]) -> None:
        """Never undone: associated providers cost nothing, and FARGATE_SPOT cannot be taken
        from a cluster while tasks still run on it (ResourceInUseException)."""
        capacity.add_providers(run, cluster)
        run.note(COMPONENT, "added the FARGATE and FARGATE_SPOT capacity providers to the cluster")

    def _converge_log_group(self, run: Run, group: dict[str, Any] | None) -> None:
        name, retention = log_group(run), run.config.settings.service.log_retention_days
        if group is None:
            call(
                run.aws,
                "logs",
                "create_log_group",
                logGroupName=name,
                tags={t["Key"]: t["Value"] for t in run.owner.tags(COMPONENT)},
            )
            run.journal.record(
                COMPONENT,
                f"created log group {name}",
                undo_ignoring(
                    NO_SUCH, lambda: call(run.aws, "logs", "delete_log_group", logGroupName=name)
                ),
                made=("logs:log-group", name),
            )
        elif group.get("retentionInDays") == retention:
            return
        call(run.aws, "logs", "put_retention_policy", logGroupName=name, retentionInDays=retention)
        previous = (group or {}).get("retentionInDays")
        if group is not None:
            run.journal.record(
                COMPONENT,
                f"changed retention of {name}",
                lambda: (
                    call(
                        run.aws,
                        "logs",
                        "put_retention_policy",
                        logGroupName=name,
                        retentionInDays=previous,
                    )
                    if previous
                    else call(run.aws, "logs", "delete_retention_policy", logGroupName=name)
                ),
            )

    def _create_role(self, run: Run, kind: str) -> dict[str, Any]:
        name = role_names(run)[kind]
        role = call(
            run.aws,
            "iam",
            "create_role",
            RoleName=name,
            Tags=run.owner.tags(COMPONENT),
            AssumeRolePolicyDocument=json.dumps(TASK_TRUST),
            Description=f"nnote {run.config.env} task {kind} role",
            PermissionsBoundary=boundary.arn(run.aws, run.config.app, run.config.preview),
        )["Role"]
        run.journal.record(
            COMPONENT,
            f"created IAM role {name}",
            lambda: delete_role(run, name),
            made=("iam:role", name),
        )
        if kind == "execution":
            call(run.aws, "iam", "attach_role_policy", RoleName=name, PolicyArn=EXECUTION_POLICY)
        return dict(role)

    def _bound(self, run: Run, name: str) -> None:
        """A role made before roles had a boundary gets its environment's; a preview's made
        before previews had their own (with the wider one of every environment) gets the
        previews'. The one change a rollback keeps (so not journaled): it only takes away what
        a task role never needs, and the deploy role may not remove boundaries."""
        arn = boundary.arn(run.aws, run.config.app, run.config.preview)
        call(
            run.aws, "iam", "put_role_permissions_boundary", RoleName=name, PermissionsBoundary=arn
        )
        run.note(
            COMPONENT,
            f"gave IAM role {name} the permissions boundary {boundary_name(run)} "
            "(kept on rollback)",
        )

    def _attach_execution_policy(self, run: Run, name: str) -> None:
        call(run.aws, "iam", "attach_role_policy", RoleName=name, PolicyArn=EXECUTION_POLICY)
        run.journal.record(
            COMPONENT,
            f"attached the execution policy to IAM role {name}",
            undo_ignoring(
                NO_SUCH,
                lambda: call(
                    run.aws,
                    "iam",
                    "detach_role_policy",
                    RoleName=name,
                    PolicyArn=EXECUTION_POLICY,
                ),
            ),
        )

    def _create_secret(self, run: Run) -> str:
        name = secret_name(run)

        def report(_code: str, left: float) -> None:
            run.note(COMPONENT, f"secret {name} is still being deleted; {left:.0f}s left")

        try:
            # A secret of the same name still being deleted refuses the name for a while.
            created = retry_while(
                ("InvalidRequestException",),
                run.dependency_budget_seconds,
                lambda: self._put_new_secret(run, name),
                report,
                delay=min(5.0, run.poll_seconds),
                sleep=run.sleep,
                when=lambda error: "scheduled for deletion" in error.message,
            )
        except AwsError as error:
            if "scheduled for deletion" not in error.message:
                raise
            raise DeployError(
                f"secret {name} is still scheduled for deletion",
                f"restore it to keep the key (aws secretsmanager restore-secret --secret-id "
                f"{name}) or delete it for good (add --force-delete-without-recovery to "
                "delete-secret), then run up again",
            ) from error
        run.journal.record(
            COMPONENT,
            f"created secret {name}",
            undo_ignoring(
                NO_SUCH,
                lambda: call(
                    run.aws,
                    "secretsmanager",
                    "delete_secret",
                    SecretId=name,
                    ForceDeleteWithoutRecovery=True,
                ),
            ),
            made=key_of(created["ARN"]),
        )
        return str(created["ARN"])

    def _put_new_secret(self, run: Run, name: str) -> dict[str, Any]:
        # Generated here and sent straight to Secrets Manager; never printed, logged or returned.
        return dict(
            call(
                run.aws,
                "secretsmanager",
                "create_secret",
                Name=name,
                SecretString=secrets.token_urlsafe(48),
                Tags=run.owner.tags(COMPONENT),
                Description="nnote Flask SECRET_KEY",
            )
        )

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed["cluster"]:
            delete_cluster(run)
        if observed["log_group"]:
            undo_ignoring(
                NO_SUCH,
                lambda: call(run.aws, "logs", "delete_log_group", logGroupName=log_group(run)),
            )()
        for kind, role in observed["roles"].items():
            if role:
                delete_role(run, role_names(run)[kind])
        if observed["secret"]:
            undo_ignoring(
                NO_SUCH,
                lambda: call(
                    run.aws,
                    "secretsmanager",
                    "delete_secret",
                    SecretId=secret_name(run),
                    ForceDeleteWithoutRecovery=True,
                ),
            )()


def boundary_name(run: Run) -> str:
    """The permissions boundary of the environment's roles: a preview's own, else the app's."""
    return boundary.name_for(run.config.app, run.config.preview)


def _bounded(run: Run, role: dict[str, Any]) -> bool:
    """Whether the role carries its environment's boundary (not merely some boundary)."""
    found = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn", "")
    return bool(found.endswith(f":policy/{boundary_name(run)}"))


def delete_cluster(run: Run) -> None:
    """A service deleted moments ago drains before ECS lets its cluster go (`down`, and the
    rollback of an `up` that made both)."""
    retry_while(
        ("ClusterContainsServicesException", "ClusterContainsTasksException"),
        run.dependency_budget_seconds,
        undo_ignoring(
            NO_SUCH, lambda: call(run.aws, "ecs", "delete_cluster", cluster=run.config.prefix)
        ),
        lambda code, left: run.note(COMPONENT, f"cluster busy ({code}); {left:.0f}s left"),
        delay=min(5.0, run.poll_seconds),
        sleep=run.sleep,
    )


def delete_role(run: Run, name: str) -> None:
    """Detach and delete policies first: IAM refuses to delete a role that has any."""
    if absent(run.aws, "iam", "get_role", NO_SUCH, RoleName=name) is None:
        return
    for policy in call(run.aws, "iam", "list_attached_role_policies", RoleName=name)[
        "AttachedPolicies"
    ]:
        call(run.aws, "iam", "detach_role_policy", RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in call(run.aws, "iam", "list_role_policies", RoleName=name)["PolicyNames"]:
        call(run.aws, "iam", "delete_role_policy", RoleName=name, PolicyName=policy)
    undo_ignoring(NO_SUCH, lambda: call(run.aws, "iam", "delete_role", RoleName=name))()
