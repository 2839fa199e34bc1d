"""service: the task definition and the ECS Fargate service behind the load balancer, and the
rollout it goes through.

A new image or changed settings register a new task definition revision and update the
service; then `up` watches *that* deployment (deployer.rollout.watch) until it completes,
fails, or times out. A completed rollout records a release on its revision's tags and the
service's `nnote:last-good` tag; a failed one puts the service back on the last good revision
(never guessed as "revision minus one"), unless ECS's circuit breaker already did, and is
reported as a failure either way. A release that changes the database schema migrates it
first, with a one-off task of the new revision (deployer.rollout.migrations); the service
changes only once that task exited 0.
"""

from __future__ import annotations

import json
import time
from typing import Any

from deployer import autoscaling, capacity
from deployer.aws import AwsError, absent, call, paginate, retry_while
from deployer.errors import DeployError, ExitCode
from deployer.inventory import Resource, key_of
from deployer.rollout import alarms, migrations, releases, snapshots
from deployer.rollout.settings import current_rollout_settings, known, rollout_settings
from deployer.rollout.watch import Verdict, Watcher
from deployer.schema import DatabaseSchema, Transition, database_schema, transition
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring
from deployer.steps.task_definition import (
    CONTAINER,
    app_container,
    differences,
    task_definition,
    task_network,
)

COMPONENT = "service"
LAST_GOOD = "nnote:last-good"
SECRETS_POLICY = "read-app-secrets"
MISSING = (
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "NoSuchEntity",
)
# ECS refuses a new service for a while, with the code it uses for bad input: IAM is eventually
# consistent (a role made seconds ago is not assumable yet), and a service of the same name
# deleted moments ago (a `down` just before) drains before its name is free.
NOT_YET = ("InvalidParameterException",)
NOT_YET_REASONS = ("assume", "still draining")


def _ecs(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "ecs", operation, **params)


def revision_of(arn: str | None) -> str:
    return arn.rsplit(":", 1)[-1] if arn else "?"


class RolloutFailed(DeployError):
    """A rollout that did not complete; `run.rollout` holds the verdict (failures, timeline).
    Exit 6 from every command that rolls out (`up` wraps it in UpFailed, also 6)."""

    exit_code = ExitCode.ROLLED_BACK


class ServiceStep(Step):
    name = COMPONENT
    depends_on = ("network", "database", "image", "runtime", "loadbalancer")

    # -- reading ----------------------------------------------------------------------------

    def observe(self, run: Run) -> Observed:
        prefix = run.config.prefix
        answer = absent(
            run.aws,
            "ecs",
            "describe_services",
            MISSING,
            cluster=prefix,
            services=[prefix],
            include=["TAGS"],
        )
        service = next(
            (s for s in (answer or {}).get("services", []) if s.get("status") == "ACTIVE"), None
        )
        if service is None:  # a target a failed run left behind is still found and removed
            return {
                "service": None,
                "task_definition": None,
                "policy": self._policy(run),
                "scaling": autoscaling.observe(run),
                "alarms": alarms.observe(run),
            }
        if not run.owner.owns(service.get("tags")):
            raise DeployError(
                f"ECS service {prefix} is not managed by nnote-deploy", "rename the app or env"
            )
        task = _ecs(run, "describe_task_definition", taskDefinition=service["taskDefinition"])[
            "taskDefinition"
        ]
        # Read even when not configured: autoscaling removed from deploy.toml must be undone.
        scaling = autoscaling.observe(run)
        return {
            "service": service,
            "task_definition": task,
            "policy": self._policy(run),
            "scaling": scaling,
            "alarms": alarms.observe(run),
        }

    def _policy(self, run: Run) -> dict[str, Any] | None:
        role = f"{run.config.prefix}-execution"
        answer = absent(
            run.aws,
            "iam",
            "get_role_policy",
            ("NoSuchEntity",),
            RoleName=role,
            PolicyName=SECRETS_POLICY,
        )
        if answer is None:
            return None
        document = answer["PolicyDocument"]
        return json.loads(document) if isinstance(document, str) else dict(document)

    def resources(self, observed: Observed) -> list[Resource]:
        service = observed["service"]
        found = alarms.resources(observed.get("alarms") or {})
        if service is None:
            return found
        primary = primary_deployment(service)
        task = observed["task_definition"] or {}
        image = app_container(task).get("image", "?")
        return [
            Resource(
                COMPONENT,
                "ecs:service",
                service["serviceName"],
                f"{service.get('runningCount', 0)}/{service.get('desiredCount', 0)} running, "
                f"rollout {primary.get('rolloutState', '?')}",
            ),
            Resource(
                COMPONENT,
                "ecs:task-definition",
                f"{task.get('family')}:{task.get('revision')}",
                image,
            ),
            *found,
        ]

    # -- planning ---------------------------------------------------------------------------

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        prefix = run.config.prefix
        spot = run.config.settings.service.spot
        if observed["service"] is None:
            return [
                Change(COMPONENT, "create", "ecs:task-definition", prefix),
                Change(
                    COMPONENT,
                    "create",
                    "ecs:service",
                    prefix,
                    f"{autoscaling.initial_count(run)} task(s), circuit breaker"
                    + (", Fargate Spot" if spot else ""),
                ),
                *autoscaling.changes(run, observed.get("scaling")),
                *alarms.changes(run, observed.get("alarms") or {}),
                *self._schema_changes(run),
            ]
        moved = (
            [
                Change(
                    COMPONENT,
                    "update",
                    "ecs:service",
                    prefix,
                    f"{capacity.describe(not spot)} -> {capacity.describe(spot)} "
                    "(a new deployment replaces the tasks)",
                )
            ]
            if capacity.switch(observed["service"], spot)
            else []
        )
        wanted = self._wanted_from_observations(run)
        if wanted is None:
            return [
                Change(COMPONENT, "update", "ecs:task-definition", prefix, "new revision"),
                *moved,
            ]
        changes = [
            Change(COMPONENT, "update", "ecs:task-definition", prefix, f"{key} changes")
            for key in differences(wanted, observed["task_definition"])
        ] + moved
        if not autoscaling.autoscaled(run) and (
            observed["service"].get("desiredCount") != run.config.settings.service.desired_count
        ):
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "ecs:service",
                    prefix,
                    f"desired count {observed['service'].get('desiredCount')} -> "
                    f"{run.config.settings.service.desired_count}",
                )
            )
        if current_rollout_settings(observed["service"]) != rollout_settings(run):
            changes.append(Change(COMPONENT, "update", "ecs:service", prefix, "rollout settings"))
        if observed["policy"] is None:
            changes.append(Change(COMPONENT, "update", "iam:role-policy", SECRETS_POLICY))
        changes += autoscaling.changes(run, observed.get("scaling"))
        changes += alarms.changes(run, observed.get("alarms") or {})
        return changes + self._schema_changes(run)

    def _schema_changes(self, run: Run) -> list[Change]:
        """The change "migration: A -> B (N steps)" when the release changes the schema."""
        planned, database = self._planned_schema(run)
        if planned.kind == "older" and not run.force_schema:
            # Before anything is built or changed: code the database cannot run is refused.
            found = snapshots.listed(run)
            what = "this source"
            migrations.refuse_if_incompatible(
                planned.wanted, database, found, what, migrations.UP_HINT
            )
        if planned.kind != "upgrade":
            return []
        action = "update" if planned.current else "create"
        name = run.config.settings.db.name
        return [Change(COMPONENT, action, "db:schema", name, planned.describe())]

    @staticmethod
    def _planned_schema(run: Run) -> tuple[Transition, DatabaseSchema]:
        instance = (run.observed.get("database") or {}).get("instance") or {}
        source = (run.observed.get("image") or {}).get("schema")
        database = database_schema(instance.get("TagList"))
        return transition(source, database), database

    def _wanted_from_observations(self, run: Run) -> dict[str, Any] | None:
        """The task definition `up` would register, from what plan observed; None if unknown yet."""
        observed = run.observed
        image = observed.get("image", {})
        uri = image.get("prebuilt") or (
            f"{image['repository']}@{image['digest']}" if image.get("digest") else None
        )
        database = (observed.get("database") or {}).get("instance")
        runtime = observed.get("runtime") or {}
        if not uri or not database or not database.get("Endpoint") or not runtime.get("secret"):
            return None
        roles = runtime["roles"]
        if not roles.get("execution") or not roles.get("task"):
            return None
        return task_definition(
            run,
            uri,
            {
                "host": database["Endpoint"]["Address"],
                "port": database["Endpoint"]["Port"],
                "name": run.config.settings.db.name,
                "secret_arn": database["MasterUserSecret"]["SecretArn"],
            },
            {
                "execution_role_arn": roles["execution"]["Arn"],
                "task_role_arn": roles["task"]["Arn"],
                "log_group": f"/nnote/{run.config.prefix}",
                "app_secret_arn": runtime["secret"]["ARN"],
            },
        )

    # -- converging -------------------------------------------------------------------------

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        observed = self.observe(run)
        source = inputs["image"].get("schema")
        # Code the database cannot run was refused by plan, before the lock (a run that
        # waited for the lock plans again).
        planned = transition(source, inputs["database"]["schema"])
        self._converge_policy(run, observed["policy"], inputs)
        wanted = task_definition(run, inputs["image"]["uri"], inputs["database"], inputs["runtime"])
        current = observed["task_definition"] or self._latest_revision(run)
        arn = (
            current["taskDefinitionArn"]
            if current and not differences(wanted, current)
            else (self._register(run, wanted))
        )
        service = observed["service"]
        serving = service["taskDefinition"] if service else None
        if planned.kind == "upgrade" or (planned.kind == "unknown" and arn != serving):
            migrations.run_migration(run, arn, planned, source, inputs, serving=service is not None)
        lb = inputs["loadbalancer"]
        alarms.converge(run, observed.get("alarms") or {}, lb["lb_arn"], lb["target_group_arn"])
        deployment: dict[str, Any] | None
        if service is None:
            deployment = self._create_service(run, arn, inputs)
            last_good = None
        else:
            last_good = _tag(service, LAST_GOOD)
            deployment = self._update_service(run, service, arn)
        autoscaling.converge(run, observed.get("scaling"))
        if deployment is not None:
            release = {
                "image": inputs["image"]["uri"],
                "commit": inputs["image"].get("version"),
                "schema": source.head if source else None,
            }
            self.roll_out(run, deployment, arn, last_good, release)
        return {
            "task_definition_arn": arn,
            "image": inputs["image"]["uri"],
        }

    def _converge_policy(
        self, run: Run, current: dict[str, Any] | None, inputs: dict[str, Outputs]
    ) -> None:
        wanted = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": sorted(
                        [inputs["database"]["secret_arn"], inputs["runtime"]["app_secret_arn"]]
                    ),
                }
            ],
        }
        if current == wanted:
            return
        role = inputs["runtime"]["execution_role"]

        def put(document: dict[str, Any]) -> None:
            call(
                run.aws,
                "iam",
                "put_role_policy",
                RoleName=role,
                PolicyName=SECRETS_POLICY,
                PolicyDocument=json.dumps(document),
            )

        def remove() -> None:
            undo_ignoring(
                ("NoSuchEntity",),
                lambda: call(
                    run.aws, "iam", "delete_role_policy", RoleName=role, PolicyName=SECRETS_POLICY
                ),
            )()

        put(wanted)
        run.journal.record(
            COMPONENT,
            f"set {SECRETS_POLICY} on {role}",
            lambda: put(current) if current else remove(),
        )

    def _latest_revision(self, run: Run) -> dict[str, Any] | None:
        """With no service (a first run, or one resumed after an interrupted `down`), the
        family's newest revision, ours and unchanged, is reused rather than registered again."""
        try:
            answer = _ecs(
                run, "describe_task_definition", taskDefinition=run.config.prefix, include=["TAGS"]
            )
        except AwsError as error:
            # ECS says "no such family" with the same ClientException it uses for bad input.
            if "unable to describe task definition" in error.message.lower():
                return None
            raise
        task = answer["taskDefinition"]
        if task.get("status") != "ACTIVE" or not run.owner.owns(answer.get("tags")):
            return None  # (moto answers with deregistered revisions too)
        return dict(task)

    def _register(self, run: Run, wanted: dict[str, Any]) -> str:
        started = time.time()
        task = _ecs(
            run, "register_task_definition", **wanted, tags=run.owner.lower_tags(COMPONENT)
        )["taskDefinition"]
        run.timeline.span("register", started, time.time())
        arn = str(task["taskDefinitionArn"])
        run.journal.record(
            COMPONENT,
            f"registered task definition {task['family']}:{task['revision']}",
            lambda: _ecs(run, "deregister_task_definition", taskDefinition=arn),
            made=key_of(arn),
        )
        run.note(COMPONENT, f"registered revision {task['revision']}")
        return arn

    def _create_service(self, run: Run, arn: str, inputs: dict[str, Outputs]) -> dict[str, Any]:
        settings, network = run.config.settings.service, inputs["network"]
        params = dict(
            cluster=run.config.prefix,
            serviceName=run.config.prefix,
            taskDefinition=arn,
            desiredCount=autoscaling.initial_count(run),
            **capacity.placement(settings.spot),
            propagateTags="SERVICE",
            networkConfiguration=task_network(network),
            loadBalancers=[
                {
                    "targetGroupArn": inputs["loadbalancer"]["target_group_arn"],
                    "containerName": CONTAINER,
                    "containerPort": settings.container_port,
                }
            ],
            **rollout_settings(run),
            tags=run.owner.lower_tags(COMPONENT),
        )
        service = retry_while(
            NOT_YET,
            300,
            lambda: _ecs(run, "create_service", **params)["service"],
            lambda _code, left: run.note(
                COMPONENT, f"ECS not ready for the service yet; {left:.0f}s left"
            ),
            delay=min(5.0, run.poll_seconds),
            sleep=run.sleep,
            when=lambda error: any(r in error.message.lower() for r in NOT_YET_REASONS),
        )
        run.journal.record(
            COMPONENT,
            f"created ECS service {run.config.prefix}",
            lambda: self._delete_service(run),
            made=key_of(service["serviceArn"]),
        )
        return primary_deployment(service)

    def _update_service(self, run: Run, service: dict[str, Any], arn: str) -> dict[str, Any] | None:
        """A new revision, Spot or on demand and, unless the autoscaler owns it, the desired
        count. The deployment to watch: a new revision's, or the one a move between Spot and
        on demand forces (the same revision on new tasks)."""
        previous_arn, previous_count = service["taskDefinition"], service.get("desiredCount")
        count = (
            {}
            if autoscaling.autoscaled(run)
            else {"desiredCount": run.config.settings.service.desired_count}
        )
        settings = rollout_settings(run)
        previous_settings = current_rollout_settings(service)
        if previous_settings == settings:
            settings = {}
        moved = capacity.switch(service, run.config.settings.service.spot)
        if (
            previous_arn == arn
            and count.get("desiredCount", previous_count) == previous_count
            and not settings
            and not moved
        ):
            return None
        updated = self._point_service(run, arn, {**count, **settings, **moved})
        undo_count: dict[str, Any] = {"desiredCount": previous_count} if count else {}
        undo_settings = known(previous_settings) if settings else {}
        undo_moved = capacity.switch(updated, capacity.on_spot(service)) if moved else {}

        def undo() -> None:
            self._point_service(run, previous_arn, {**undo_count, **undo_settings, **undo_moved})

        run.journal.record(COMPONENT, f"updated service to revision {revision_of(arn)}", undo)
        if moved:
            spot = run.config.settings.service.spot
            run.note(COMPONENT, f"moving the tasks to {capacity.describe(spot)}")
        return primary_deployment(updated) if previous_arn != arn or moved else None

    def _point_service(self, run: Run, arn: str, count: dict[str, Any]) -> dict[str, Any]:
        return dict(
            _ecs(
                run,
                "update_service",
                cluster=run.config.prefix,
                service=run.config.prefix,
                taskDefinition=arn,
                **count,
            )["service"]
        )

    def redeploy(self, run: Run) -> str:
        """Force a new deployment of the current revision, watched like any other."""
        service = self._existing_service(run, "redeploy")
        updated = _ecs(
            run,
            "update_service",
            cluster=run.config.prefix,
            service=run.config.prefix,
            forceNewDeployment=True,
        )["service"]
        current = str(service["taskDefinition"])
        last_good = _tag(service, LAST_GOOD) or current
        self.roll_out(run, primary_deployment(updated), current, last_good)
        return str(service["taskDefinition"])

    def roll_back_to(self, run: Run, arn: str) -> str:
        """Put the service on a recorded release and watch it like any rollout; if that fails,
        back to the revision that served before."""
        service = self._existing_service(run, "roll back")
        if service["taskDefinition"] == arn:
            return arn
        count = (
            {}
            if autoscaling.autoscaled(run)
            else {"desiredCount": run.config.settings.service.desired_count}
        )
        updated = self._point_service(run, arn, count)
        previous = str(service["taskDefinition"])
        self.roll_out(run, primary_deployment(updated), arn, previous)
        return arn

    def _existing_service(self, run: Run, verb: str) -> dict[str, Any]:
        service = self.observe(run)["service"]
        if service is None:
            raise DeployError(
                f"no service {run.config.prefix} to {verb}", "run `nnote-deploy up` first"
            )
        return dict(service)

    # -- rolling out ------------------------------------------------------------------------

    def roll_out(
        self,
        run: Run,
        deployment: dict[str, Any],
        arn: str,
        last_good: str | None,
        release: dict[str, Any] | None = None,
    ) -> Verdict:
        """Watch the deployment; a completed one becomes a release and the last good revision,
        a failed one goes back to `last_good` (unless ECS already rolled back) and raises."""
        timeout = run.rollout_timeout_seconds or run.config.settings.service.rollout_timeout_seconds
        verdict = Watcher(run, {**deployment, "taskDefinition": arn}, run.timeline).watch(timeout)
        run.rollout = verdict
        if not verdict.completed:
            self._fail(run, verdict, last_good)
        if release is not None:  # `up`'s new revision (not a redeploy or a rollback)
            tags = releases.record(
                release["image"], release["commit"], run.timeline.total_seconds, release["schema"]
            )
            _ecs(run, "tag_resource", resourceArn=arn, tags=tags)
        _ecs(
            run,
            "tag_resource",
            resourceArn=self._service_arn(run),
            tags=[{"key": LAST_GOOD, "value": arn}],
        )
        return verdict

    def _fail(self, run: Run, verdict: Verdict, last_good: str | None) -> None:
        why = verdict.why
        if verdict.serving is not None:
            raise RolloutFailed(
                f"deploy failed; ECS rolled back to revision {revision_of(verdict.serving)}, "
                "which is serving now",
                f"rollout: {why}; see `nnote-deploy logs --since 30m`",
            )
        if last_good is None:
            raise RolloutFailed(
                f"deploy failed ({why}); no earlier good revision to go back to",
                "the first deploy is rolled back with the rest of this run",
            )
        count = (
            {}
            if autoscaling.autoscaled(run)
            else {"desiredCount": run.config.settings.service.desired_count}
        )
        self._point_service(run, last_good, count)
        raise RolloutFailed(
            f"deploy failed; service rolled back to revision {revision_of(last_good)}",
            f"rollout: {why}; see `nnote-deploy logs --since 30m`",
        )

    def _service_arn(self, run: Run) -> str:
        return str(
            _ecs(run, "describe_services", cluster=run.config.prefix, services=[run.config.prefix])[
                "services"
            ][0]["serviceArn"]
        )

    # -- deleting ---------------------------------------------------------------------------

    def _delete_service(self, run: Run) -> None:
        prefix = run.config.prefix
        try:
            _ecs(run, "update_service", cluster=prefix, service=prefix, desiredCount=0)
            _ecs(run, "delete_service", cluster=prefix, service=prefix, force=True)
        except AwsError as error:
            if error.code not in MISSING:
                raise

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed.get("scaling"):
            autoscaling.remove(run)
        if observed["service"]:
            self._delete_service(run)
        if observed.get("alarms"):
            alarms.remove(run)
        family = run.config.prefix
        arns = paginate(
            run.aws,
            "ecs",
            "list_task_definitions",
            "taskDefinitionArns",
            familyPrefix=family,
            status="ACTIVE",
        )
        for arn in arns:
            _ecs(run, "deregister_task_definition", taskDefinition=arn)


def primary_deployment(service: dict[str, Any]) -> dict[str, Any]:
    """The service's PRIMARY deployment, the one ECS rolls out ({} if it lists none)."""
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})


def _tag(service: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in service.get("tags") or [] if t["key"] == key), None)
