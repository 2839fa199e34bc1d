"""Schema migrations as a step of a release, run once and before traffic.

When the new revision's schema head (read from the source's migrations) differs from the
database's (recorded on the RDS instance's tags by the last migration), `up` runs the
migration as a one-off task of the *new* task definition, before the service is created or
updated: `python -m nnote.boot` migrates under its database lock, then `flask db current`
prints the head it reached. The service's own tasks start with NNOTE_MIGRATE=0. A migration
that does not exit 0 stops the release with its log tail; the service keeps serving the old
revision, and the database is as the failed migration left it (MySQL cannot roll back DDL),
which is what the snapshot before it is for.

A release whose schema is *older* than the database's (a rollback, or `up` from an older
commit) is refused unless every migration in between declared itself backward compatible
(deployer.schema), or the user forces it.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from deployer import oneoff
from deployer.aws import call
from deployer.errors import DeployError, ExitCode
from deployer.rollout import snapshots
from deployer.rollout.watch import Verdict
from deployer.schema import (
    DatabaseSchema,
    Migration,
    Schema,
    Transition,
    database_tags,
    pending_tags,
)
from deployer.steps.task_definition import task_network

if TYPE_CHECKING:
    from deployer.steps.base import Outputs, Run

COMPONENT = "service"
# The image's entry point (nnote.boot) waits for the database and migrates under its lock
# (NNOTE_MIGRATE=1), then runs this: it prints the head the database reached.
COMMAND = ["flask", "--app", "nnote", "db", "current"]
HEAD_LINE = re.compile(r"^(\w+) \(head\)")
# Why a task stops before its command runs while what a first run made moments ago is not
# usable yet (IAM is eventually consistent): worth starting again. Anything else is not.
NOT_YET_USABLE = ("ResourceInitializationError", "assume", "AccessDenied")
STARTED_BY = "nnote-deploy/migrate"
MIGRATE = {"NNOTE_MIGRATE": "1"}
START_ATTEMPTS = 3


class MigrationFailed(DeployError):
    """The migration task did not exit 0; `run.rollout` holds its failure and log tail."""

    exit_code = ExitCode.ROLLED_BACK


class IncompatibleSchema(DeployError):
    """Code for an older schema than the database's, across a migration that is not
    backward compatible."""


def refuse_if_incompatible(
    wanted: str | None,
    database: DatabaseSchema,
    found: list[snapshots.Snapshot],
    what: str,
    hint: str,
) -> None:
    """Refuse code written for schema `wanted` on a database it cannot run on."""
    if database.head is None or database.accepts(wanted):
        return
    restore = snapshots.before_schema(found, wanted)
    where = (
        f"; the data from before it is in snapshot {restore.name}"
        if restore
        else "; no snapshot holds the older schema"
    )
    why = (
        f"{what} expects schema {wanted}, but the database is at {database.head} and a "
        "migration since is not backward compatible"
        if wanted
        else f"{what} has no schema on record (it predates them), and the database is at "
        f"{database.head}: its tasks would try to migrate it back"
    )
    raise IncompatibleSchema(why + where, hint)


FORCE_HINT = (
    "roll forward with a fix instead; or pass --force to deploy it anyway (the schema stays "
    "as it is: restore the snapshot by hand if the data must go back)"
)
UP_HINT = (
    "deploy a commit with the database's migrations; or `nnote-deploy rollback --to N "
    "--force` to run an older release anyway"
)


def run_migration(
    run: Run,
    arn: str,
    planned_change: Transition,
    source: Schema | None,
    inputs: dict[str, Outputs],
    *,
    serving: bool,
) -> None:
    """Snapshot (if asked and there is data), migrate with a one-off task, record the head."""
    revision = arn.rsplit(":", 1)[-1]
    database = inputs["database"]
    if run.config.settings.db.snapshot_before_migrate and serving:
        started = time.time()
        sure = database["schema"].pending is None
        snapshots.take(run, revision, planned_change.current, sure)
        run.timeline.span("snapshot", started, time.time())
    run.note(COMPONENT, planned_change.describe())
    _tag(run, database, pending_tags(source))
    started = time.time()
    outcome = _migrate(run, arn, inputs)
    run.timeline.span("migrate", started, time.time())
    if not outcome.succeeded:
        _fail(run, arn, outcome)
    _tag(run, database, database_tags(source or _reported_schema(outcome.log_tail)))


def _reported_schema(lines: list[str]) -> Schema | None:
    """The head `flask db current` printed, for an image whose migrations were not read."""
    heads = [m.group(1) for line in lines if (m := HEAD_LINE.match(line.strip()))]
    return Schema((Migration(heads[-1], None, False),)) if heads else None


def _migrate(run: Run, arn: str, inputs: dict[str, Outputs]) -> oneoff.TaskOutcome:
    """The migration task, started again when it stopped before its command ran (roles and
    secrets made moments ago may not be usable yet: IAM is eventually consistent)."""
    timeout = run.rollout_timeout_seconds or run.config.settings.service.rollout_timeout_seconds
    attempt = 1
    while True:
        task = oneoff.start(run, arn, COMMAND, task_network(inputs["network"]), STARTED_BY, MIGRATE)
        follower = oneoff.Follower(run, task, lambda line: run.note(COMPONENT, f"migrate: {line}"))
        outcome = follower.follow(timeout)
        reason = outcome.failure.stopped_reason if outcome.failure else ""
        not_yet = any(words in reason for words in NOT_YET_USABLE)
        if outcome.exit_code is not None or not not_yet or attempt == START_ATTEMPTS:
            return outcome
        run.note(COMPONENT, f"the migration task did not start ({reason}); starting it again")
        run.sleep(min(10.0, run.poll_seconds))
        attempt += 1


def _fail(run: Run, arn: str, outcome: oneoff.TaskOutcome) -> None:
    failure = outcome.failure
    why = failure.sentence if failure else f"exit code {outcome.exit_code}"
    if failure is not None:
        failure = replace(failure, log_tail=tuple(outcome.log_tail))
    run.rollout = Verdict(
        completed=False,
        why=f"the migration failed: {why}",
        failures=[failure] if failure else [],
        timeline=run.timeline,
        task_definition=arn,
    )
    raise MigrationFailed(
        f"the migration failed ({why}); the service was not changed",
        "its last log lines are above; fix the migration and run `nnote-deploy up` again",
    )


def _tag(run: Run, database: Outputs, tags: list[dict[str, str]]) -> None:
    """Record the database's schema on its own tags."""
    call(run.aws, "rds", "add_tags_to_resource", ResourceName=database["arn"], Tags=tags)
