"""Migration-aware releases against the emulator: the schema head read from the source, one
migration task before the service changes, a failed migration that changes nothing, the
snapshot before it, a rollback that respects the schema, and `run` for one-off commands.

The image's migrations are a source folder written here (the image step reads them from the
checkout it builds; these tests deploy prebuilt images, whose schema is otherwise unknown).
The migration task itself is the emulator's (tests/support/realism.py, OneOffTasks): it stops
with the exit code and log lines a test scripts. The real upgrade under the database lock is
tested against MariaDB in tests/app/test_boot_migrations.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from deployer import pipeline
from deployer.cli import app
from deployer.errors import DeployError
from deployer.rollout.migrations import IncompatibleSchema, MigrationFailed
from deployer.schema import MIGRATIONS, DatabaseSchema, read_schema, transition
from deployer.steps.image import ImageStep
from tests.deployer.conftest import DEPLOYER_CREDENTIALS, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents
from tests.support.realism import Realism

IMAGE_B = PREBUILT_IMAGE.replace("0" * 64, "b" * 64)
IMAGE_C = PREBUILT_IMAGE.replace("0" * 64, "c" * 64)
INITIAL = ("0001_initial", None, False)
PINNED = ("0002_note_pinned", "0001_initial", True)
DROPPED = ("0003_drop_first_name", "0002_note_pinned", False)
LATER = ("0004_tags", "0003_drop_first_name", True)


def source(tmp_path: Path, *chain: tuple[str, str | None, bool]) -> Path:
    """A checkout whose migrations are `chain` (revision, down revision, compatible)."""
    folder = tmp_path / "-".join(c[0] for c in chain) / MIGRATIONS
    folder.mkdir(parents=True, exist_ok=True)
    for revision, down, compatible in chain:
        (folder / f"{revision}.py").write_text(
            f'"""{revision}"""\n\nrevision = "{revision}"\ndown_revision = {down!r}\n'
            f"backward_compatible = {compatible}\n\n\ndef upgrade():\n    pass\n"
        )
    return folder.parents[2]


@pytest.fixture
def built_from(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Make the (prebuilt) image one built from a checkout with the given migrations."""
    current: dict[str, Any] = {"schema": None}

    for name in ("observe", "apply"):
        original = getattr(ImageStep, name)

        def with_schema(self: ImageStep, *args: Any, _original: Any = original) -> Any:
            return {**_original(self, *args), "schema": current["schema"]}

        monkeypatch.setattr(ImageStep, name, with_schema)

    def use(checkout: Path) -> None:
        current["schema"] = read_schema(checkout)

    return use


def up(image: str, config: Path | None = None) -> Any:
    run = make_run(config=config)
    pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, image))
    return run


def plan(image: str, config: Path | None = None) -> list[str]:
    run = make_run(config=config)
    return [c.detail for c in pipeline.plan(run, pipeline.deploy_steps(ROOT, image))]


def calls(realism: Realism) -> list[str]:
    return [f"{c.service}:{c.operation}" for c in realism.calls]


def ecs() -> Any:
    return boto3.client("ecs", region_name=REGION)


def serving() -> str:
    found = ecs().describe_services(cluster="nnote-staging", services=["nnote-staging"])
    return str(found["services"][0]["taskDefinition"]).rsplit(":", 1)[-1]


def database_tags() -> dict[str, str]:
    rds = boto3.client("rds", region_name=REGION)
    instance = rds.describe_db_instances(DBInstanceIdentifier="nnote-staging")["DBInstances"][0]
    return {t["Key"]: t["Value"] for t in instance["TagList"]}


def one_off_tasks(realism: Realism) -> list[dict[str, Any]]:
    return list(realism.state.get("one-off-tasks", {}).values())


# -- the schema as the source declares it -----------------------------------------------------


def test_the_schema_is_read_in_order_with_what_each_migration_declares(tmp_path: Path) -> None:
    # Files sorted by name need not be the chain's order.
    schema = read_schema(source(tmp_path, DROPPED, INITIAL, PINNED))
    assert schema is not None
    assert [m.revision for m in schema.chain] == [INITIAL[0], PINNED[0], DROPPED[0]]
    assert schema.head == DROPPED[0]
    assert schema.steps_from(None) == [INITIAL[0], PINNED[0], DROPPED[0]]
    assert schema.steps_from(PINNED[0]) == [DROPPED[0]]
    # Code for 0002 does not run after 0003 dropped a column; 0001's runs after 0002.
    assert schema.compatible_revisions() == (DROPPED[0],)
    expanded = read_schema(source(tmp_path, INITIAL, PINNED))
    assert expanded is not None and expanded.compatible_revisions() == (PINNED[0], INITIAL[0])
    assert read_schema(tmp_path / "no-such-checkout") is None


def test_migrations_that_are_not_one_chain_are_refused(tmp_path: Path) -> None:
    two_heads = source(tmp_path, INITIAL, PINNED, ("0002_other", "0001_initial", True))
    with pytest.raises(DeployError, match="do not form one chain"):
        read_schema(two_heads)
    gap = source(tmp_path, INITIAL, ("0003_late", "0002_missing", True))
    with pytest.raises(DeployError, match="0003_late not on it"):
        read_schema(gap)
    merge = source(tmp_path, INITIAL)
    (merge / MIGRATIONS / "0002_merge.py").write_text(
        'revision = "0002_merge"\ndown_revision = ("0001_initial", "0001_b")\n'
    )
    with pytest.raises(DeployError, match="merge"):
        read_schema(merge)


def test_annotated_assignments_of_newer_alembic_templates_are_read(tmp_path: Path) -> None:
    checkout = source(tmp_path, INITIAL)
    (checkout / MIGRATIONS / "0002_typed.py").write_text(
        "from typing import Union\n\nrevision: str = '0002_typed'\n"
        "down_revision: Union[str, None] = '0001_initial'\nbackward_compatible: bool = True\n"
    )
    schema = read_schema(checkout)
    assert schema is not None and schema.head == "0002_typed"
    assert schema.chain[-1].backward_compatible


def test_the_apps_own_migrations_declare_their_compatibility() -> None:
    schema = read_schema(ROOT)
    assert schema is not None and len(schema.chain) >= 2, "the app has a second migration"
    assert schema.chain[0].revision == "0001_initial" and not schema.chain[0].backward_compatible
    assert schema.chain[1].revision == "0002_note_pinned" and schema.chain[1].backward_compatible
    assert schema.chain[2].revision == "0003_login_sessions" and schema.chain[2].backward_compatible
    assert schema.chain[3].revision == "0004_note_features" and schema.chain[3].backward_compatible
    assert schema.chain[4].revision == "0005_notes_version" and schema.chain[4].backward_compatible
    assert schema.head == "0006_rerender_notes" and schema.chain[5].backward_compatible
    assert schema.compatible_revisions() == (
        "0006_rerender_notes",
        "0005_notes_version",
        "0004_note_features",
        "0003_login_sessions",
        "0002_note_pinned",
        "0001_initial",
    )


def test_a_transition_is_described_as_plan_prints_it(tmp_path: Path) -> None:
    schema = read_schema(source(tmp_path, INITIAL, PINNED, DROPPED))
    older = read_schema(source(tmp_path, INITIAL))
    assert transition(schema, DatabaseSchema(PINNED[0])).describe() == (
        "migration: 0002_note_pinned -> 0003_drop_first_name (1 step)"
    )
    assert transition(schema, DatabaseSchema(None)).describe() == (
        "migration: (none recorded) -> 0003_drop_first_name (3 steps)"
    )
    assert transition(schema, DatabaseSchema(DROPPED[0])).kind == "none"
    assert transition(older, DatabaseSchema(PINNED[0])).kind == "older"
    assert transition(None, DatabaseSchema(PINNED[0])).kind == "unknown"


# -- one migration, before traffic ----------------------------------------------------------


def test_a_release_with_a_new_migration_runs_one_task_before_the_service_changes(
    aws_env: dict[str, str], realism: Realism, built_from: Any, tmp_path: Path
) -> None:
    built_from(source(tmp_path, INITIAL))
    first = up(PREBUILT_IMAGE)
    names = calls(realism)
    assert names.count("ecs:RunTask") == 1
    assert names.index("ecs:RunTask") < names.index("ecs:CreateService")
    [task] = one_off_tasks(realism)
    # The image's entry point migrates, then runs this (it prints the head reached).
    assert task["command"] == ["flask", "--app", "nnote", "db", "current"]
    assert {"name": "NNOTE_MIGRATE", "value": "1"} in task["environment"]
    assert task["task_definition"].endswith(":1")
    assert database_tags()["nnote:schema"] == INITIAL[0]
    assert [p.name for p in first.timeline.phases()][:2] == ["register", "migrate"]
    # The service's own tasks never migrate.
    definition = ecs().describe_task_definition(taskDefinition="nnote-staging:1")
    environment = definition["taskDefinition"]["containerDefinitions"][0]["environment"]
    assert {"name": "NNOTE_MIGRATE", "value": "0"} in environment

    built_from(source(tmp_path, INITIAL, PINNED))
    assert "migration: 0001_initial -> 0002_note_pinned (1 step)" in plan(IMAGE_B)
    realism.calls.clear()
    up(IMAGE_B)
    names = calls(realism)
    assert names.count("ecs:RunTask") == 1
    assert names.index("ecs:RunTask") < names.index("ecs:UpdateService")
    assert one_off_tasks(realism)[-1]["task_definition"].endswith(":2")
    assert database_tags() == {**database_tags(), "nnote:schema": PINNED[0]}
    assert database_tags()["nnote:schema-compatible"] == "0002_note_pinned 0001_initial"

    # A new image with the same schema: nothing to migrate.
    realism.calls.clear()
    assert not any(d.startswith("migration") for d in plan(IMAGE_C))
    up(IMAGE_C)
    assert "ecs:RunTask" not in calls(realism) and serving() == "3"


def test_a_failed_migration_changes_nothing_and_shows_its_last_lines(
    aws_env: dict[str, str],
    realism: Realism,
    built_from: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built_from(source(tmp_path, INITIAL))
    up(PREBUILT_IMAGE)
    built_from(source(tmp_path, INITIAL, PINNED))
    lines = [f"INFO  [alembic] step {i}" for i in range(30)] + [
        "sqlalchemy.exc.OperationalError: (1060, \"Duplicate column name 'pinned'\")"
    ]
    realism.state["one-off"] = [{"exit_code": 1, "log": lines}]
    realism.calls.clear()
    result = invoke("up", "--yes", "--image", IMAGE_B)
    assert result.exit_code == 6, result.output
    assert "the migration failed (the app exited with code 1)" in result.stderr
    assert "the service was not changed" in result.stderr
    # Streamed as they came, then the last 20 under the failure.
    assert "migrate: INFO  [alembic] step 0" in result.stderr
    tail = result.stderr.split("its last 20 log line(s):", 1)[1]
    assert "| INFO  [alembic] step 11" in tail and "step 10" not in tail
    assert "| sqlalchemy.exc.OperationalError: (1060" in tail
    assert "ecs:UpdateService" not in calls(realism)
    assert serving() == "1"
    assert database_tags()["nnote:schema"] == INITIAL[0]
    assert database_tags()["nnote:schema-pending"] == PINNED[0], "begun, never seen to end"
    revisions = ecs().list_task_definitions(familyPrefix="nnote-staging", status="ACTIVE")
    assert [a.rsplit(":", 1)[-1] for a in revisions["taskDefinitionArns"]] == ["1"]


def test_a_migration_task_that_could_not_start_is_started_again(
    aws_env: dict[str, str], realism: Realism, built_from: Any, tmp_path: Path
) -> None:
    """A first run's roles and secrets policy are moments old: the task may fail to start."""
    built_from(source(tmp_path, INITIAL))
    realism.state["one-off"] = [
        {
            "exit_code": None,
            "stop_code": "TaskFailedToStart",
            "stopped_reason": "ResourceInitializationError: unable to pull secrets or registry "
            "auth: unable to retrieve secret from asm: AccessDeniedException",
        }
    ]
    up(PREBUILT_IMAGE)
    assert len(one_off_tasks(realism)) == 2
    assert database_tags()["nnote:schema"] == INITIAL[0]
    assert database_tags()["nnote:schema-pending"] == "none"

    # An image that cannot be pulled does not get better by trying again.
    built_from(source(tmp_path, INITIAL, PINNED))
    realism.state["one-off"] = [
        {
            "exit_code": None,
            "stop_code": "TaskFailedToStart",
            "stopped_reason": "CannotPullContainerError: pull image manifest has been retried",
        }
    ]
    with pytest.raises(pipeline.UpFailed, match="the image could not be pulled"):
        up(IMAGE_B)
    assert len(one_off_tasks(realism)) == 3


def test_a_prebuilt_image_migrates_each_new_revision_and_records_the_head_it_reports(
    aws_env: dict[str, str], realism: Realism
) -> None:
    """An image's migrations cannot be read without pulling it: each new revision migrates,
    and the head is what `flask db current` printed at the end (unknown if nothing)."""
    up(PREBUILT_IMAGE)
    assert database_tags()["nnote:schema"] == "unknown"
    realism.state["one-off"] = [{"exit_code": 0, "log": ["INFO  [alembic]", "0002_x (head)"]}]
    up(IMAGE_B)
    assert len(one_off_tasks(realism)) == 2
    assert database_tags()["nnote:schema"] == "0002_x"
    up(IMAGE_B)  # converged: no new revision, no migration
    assert len(one_off_tasks(realism)) == 2


# -- snapshots before a migration -------------------------------------------------------------


def snapshot_config(tmp_path: Path, keep: int = 3) -> Path:
    text = (ROOT / "deploy.toml").read_text()
    text = text.replace("snapshot_before_migrate = false", "snapshot_before_migrate = true")
    text = text.replace("snapshots_keep = 3", f"snapshots_keep = {keep}")
    config = tmp_path / "deploy.toml"
    config.write_text(text)
    return config


def manual_snapshots() -> dict[str, dict[str, str]]:
    rds = boto3.client("rds", region_name=REGION)
    found = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    return {s["DBSnapshotIdentifier"]: {t["Key"]: t["Value"] for t in s["TagList"]} for s in found}


def test_a_snapshot_is_taken_before_the_migration_listed_and_kept_by_down(
    aws_env: dict[str, str], realism: Realism, built_from: Any, tmp_path: Path
) -> None:
    config = snapshot_config(tmp_path, keep=1)
    built_from(source(tmp_path, INITIAL))
    up(PREBUILT_IMAGE, config)
    assert manual_snapshots() == {}, "a new database has nothing to keep"
    built_from(source(tmp_path, INITIAL, PINNED))
    realism.calls.clear()
    up(IMAGE_B, config)
    names = calls(realism)
    assert names.index("rds:CreateDBSnapshot") < names.index("ecs:RunTask")
    tags = manual_snapshots()["nnote-staging-release-2"]
    assert tags["nnote:release"] == "2" and tags["nnote:schema"] == INITIAL[0]
    assert tags["nnote:managed-by"] == "nnote-deploy"

    built_from(source(tmp_path, INITIAL, PINNED, DROPPED))
    up(IMAGE_C, config)
    assert list(manual_snapshots()) == ["nnote-staging-release-3"], "keeps the newest 1"
    found = pipeline.releases(make_run(config=config))
    assert [(r.revision, r.schema, r.snapshot) for r in found] == [
        (3, DROPPED[0], "nnote-staging-release-3"),
        (2, PINNED[0], None),
        (1, INITIAL[0], None),
    ]

    # A migration that failed half-way: the next snapshot holds no schema a rollback can name.
    built_from(source(tmp_path, INITIAL, PINNED, DROPPED, LATER))
    realism.state["one-off"] = [{"exit_code": 1, "log": ["half-way"]}]
    with pytest.raises(pipeline.UpFailed) as failed:
        up(IMAGE_B, config)
    assert isinstance(failed.value.__cause__, MigrationFailed)
    assert failed.value.rollback.failed == [], "the snapshot is kept on purpose, not a stray"
    realism.state["one-off"] = []
    up(IMAGE_B.replace("b" * 64, "d" * 64), config)
    taken = manual_snapshots()
    assert [(name, tags["nnote:schema"]) for name, tags in taken.items()] == [
        ("nnote-staging-release-5", "unknown")
    ]
    assert database_tags()["nnote:schema"] == LATER[0]

    result = pipeline.down(make_run(config=config), QuietEvents())
    assert result.leftovers == []
    assert [r.id for r in result.kept] == ["nnote-staging-release-5"]
    assert list(manual_snapshots()) == ["nnote-staging-release-5"]
    run = make_run(config=config)
    run.delete_snapshots = True
    assert pipeline.down(run, QuietEvents()).kept == []
    assert manual_snapshots() == {}


# -- rollback that respects data --------------------------------------------------------------


def invoke(command: str, *args: str, config: Path = ROOT / "deploy.toml") -> Any:
    return CliRunner().invoke(
        app,
        [command, "--config", str(config), *args],
        env={"COLUMNS": "200", "NNOTE_DEPLOY_POLL_SECONDS": "0.01", **DEPLOYER_CREDENTIALS},
    )


def test_rollback_across_a_compatible_migration_goes_ahead(
    aws_env: dict[str, str], built_from: Any, tmp_path: Path
) -> None:
    built_from(source(tmp_path, INITIAL))
    up(PREBUILT_IMAGE)
    built_from(source(tmp_path, INITIAL, PINNED))
    up(IMAGE_B)
    result = invoke("rollback")
    assert result.exit_code == 0, result.output
    assert serving() == "1"
    assert database_tags()["nnote:schema"] == PINNED[0], "a rollback never touches the schema"


def test_rollback_across_a_contract_migration_is_refused_unless_forced(
    aws_env: dict[str, str], built_from: Any, tmp_path: Path
) -> None:
    config = snapshot_config(tmp_path)
    built_from(source(tmp_path, INITIAL, PINNED))
    up(PREBUILT_IMAGE, config)
    built_from(source(tmp_path, INITIAL, PINNED, DROPPED))
    up(IMAGE_B, config)

    with pytest.raises(IncompatibleSchema) as refused:
        pipeline.rollback(make_run(config=config), QuietEvents(), None)
    assert "release 1 expects schema 0002_note_pinned" in refused.value.message
    assert "snapshot nnote-staging-release-2" in refused.value.message
    assert serving() == "2"

    cli = invoke("rollback", config=config)
    assert cli.exit_code == 1 and "--force" in cli.stderr
    forced = invoke("rollback", "--force", config=config)
    assert forced.exit_code == 0, forced.output
    assert "snapshot nnote-staging-release-2" in forced.stderr
    assert serving() == "1"


def test_rollback_to_a_release_without_a_schema_on_record_is_refused(
    aws_env: dict[str, str], built_from: Any, tmp_path: Path
) -> None:
    """Its tasks (from before schema records) would try to migrate the database back."""
    up(PREBUILT_IMAGE)
    built_from(source(tmp_path, INITIAL))
    up(IMAGE_B)
    result = invoke("rollback")
    assert result.exit_code == 1
    assert "release 1 has no schema on record (it predates them)" in result.stderr
    assert serving() == "2"


def test_up_from_an_older_checkout_is_refused_across_a_contract_migration(
    aws_env: dict[str, str], realism: Realism, built_from: Any, tmp_path: Path
) -> None:
    built_from(source(tmp_path, INITIAL, PINNED, DROPPED))
    up(PREBUILT_IMAGE)
    built_from(source(tmp_path, INITIAL, PINNED))
    realism.calls.clear()
    with pytest.raises(IncompatibleSchema) as refused:  # by plan, before anything is made
        up(IMAGE_B)
    assert "this source expects schema 0002_note_pinned" in refused.value.message
    assert "rollback --to N --force" in refused.value.hint
    assert not any(c.startswith(("ecs:Register", "ecs:RunTask")) for c in calls(realism))
    assert serving() == "1"

    # A database that accepts the older code: nothing to plan for the schema, nothing refused.
    built_from(source(tmp_path, INITIAL, PINNED, DROPPED, LATER))
    up(IMAGE_C)
    built_from(source(tmp_path, INITIAL, PINNED, DROPPED))
    assert not any("schema" in d for d in plan(IMAGE_B))


# -- one-off commands -------------------------------------------------------------------------


def test_run_prints_the_commands_lines_and_exits_with_its_code(
    aws_env: dict[str, str], realism: Realism
) -> None:
    up(PREBUILT_IMAGE)
    realism.state["one-off"] = [{"exit_code": 3, "log": ["0002_note_pinned (head)", "bye"]}]
    result = invoke("run", "--", "flask", "--app", "nnote", "db", "current")
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines() == ["0002_note_pinned (head)", "bye"]
    assert "exited with code 3" in result.stderr
    task = one_off_tasks(realism)[-1]
    assert task["command"] == ["flask", "--app", "nnote", "db", "current"]
    assert task["task_definition"].endswith(":1")

    realism.state["one-off"] = [
        {"exit_code": None, "stop_code": "TaskFailedToStart", "stopped_reason": (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
        )}
    ]  # fmt: skip
    failed = invoke("run", "--", "true")
    assert failed.exit_code == 1
    assert "stopped before its command ended: the image could not be pulled" in failed.stderr


def test_run_without_a_service_says_so(aws_env: dict[str, str]) -> None:
    result = invoke("run", "--", "true")
    assert result.exit_code == 1 and "no service nnote-staging" in result.stderr


def test_a_migration_failure_is_a_rollout_failure_for_the_exit_code() -> None:
    assert MigrationFailed("x").exit_code == 6
