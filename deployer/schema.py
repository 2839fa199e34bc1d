"""The app's database schema as its source declares it: the Alembic migrations under
nnote/migrations/versions, read with `ast` (never imported: a deployer does not run the app's
code), and what moving the database from one head to another means.

A migration module may declare `backward_compatible = True`: code from before it still runs
on the schema it leaves (an "expand" step: a new nullable or defaulted column, a new table).
Without the declaration a migration counts as a "contract" step (a column dropped or renamed),
after which a rollback to older code is refused unless forced.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from deployer.errors import DeployError

MIGRATIONS = Path("nnote") / "migrations" / "versions"
# RDS and ECS tag values hold 256 characters; revision ids are short, a chain of them is not.
TAG_LIMIT = 256


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str | None
    backward_compatible: bool


@dataclass(frozen=True)
class Schema:
    """A linear chain of migrations, oldest first (the app has no branches)."""

    chain: tuple[Migration, ...]

    @property
    def head(self) -> str | None:
        return self.chain[-1].revision if self.chain else None

    def knows(self, revision: str | None) -> bool:
        return revision is None or any(m.revision == revision for m in self.chain)

    def steps_from(self, revision: str | None) -> list[str]:
        """The migrations an upgrade from `revision` (None: an empty database) runs."""
        if revision is None:
            return [m.revision for m in self.chain]
        names = [m.revision for m in self.chain]
        return names[names.index(revision) + 1 :] if revision in names else []

    def compatible_revisions(self) -> tuple[str, ...]:
        """The schema revisions whose code still runs on the head's schema, newest first: the
        head, then back through every migration that declares itself backward compatible."""
        found: list[str] = []
        for migration in reversed(self.chain):
            found.append(migration.revision)
            if not migration.backward_compatible or migration.down_revision is None:
                break
        return tuple(found)


def read_schema(source: Path) -> Schema | None:
    """The schema `source` declares; None when it has no migrations to read. Migrations that
    do not form one chain (two heads, a merge, a gap) are refused: which head the database
    should reach would be a guess."""
    folder = source / MIGRATIONS
    if not folder.is_dir():
        return None
    migrations = [m for p in sorted(folder.glob("*.py")) if (m := _migration(p)) is not None]
    chain = _ordered(migrations)
    if len(chain) != len(migrations):
        left = sorted(m.revision for m in migrations if m not in chain)
        raise DeployError(
            f"{MIGRATIONS}: the migrations do not form one chain ({', '.join(left)} not on it)",
            "give each migration the previous head as its down_revision (no branches or merges)",
        )
    return Schema(tuple(chain))


def _migration(path: Path) -> Migration | None:
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        target, value = _assignment(node)
        if target is not None:
            values[target] = value
    revision = values.get("revision")
    if not isinstance(revision, str):
        return None
    down = values.get("down_revision")
    if down is not None and not isinstance(down, str):
        raise DeployError(
            f"{path.name}: down_revision {down!r} is a merge or not a literal",
            "the deployer follows one linear chain of migrations",
        )
    return Migration(revision, down, values.get("backward_compatible") is True)


def _assignment(node: ast.stmt) -> tuple[str | None, object]:
    """`name = literal` or `name: type = literal` at module level."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None, None
    if not isinstance(target, ast.Name):
        return None, None
    try:
        return target.id, ast.literal_eval(value)
    except (ValueError, TypeError):
        return target.id, object()  # not a literal: never a usable revision


def _ordered(migrations: list[Migration]) -> list[Migration]:
    following: dict[str | None, list[Migration]] = {}
    for migration in migrations:
        following.setdefault(migration.down_revision, []).append(migration)
    chain: list[Migration] = []
    current = following.get(None, [])
    while len(current) == 1 and len(chain) < len(migrations):
        chain.append(current[0])
        current = following.get(current[0].revision, [])
    return chain


@dataclass(frozen=True)
class DatabaseSchema:
    """What the database was last migrated to, as recorded on its tags (None: never recorded)
    and the schema revisions whose code runs on it."""

    head: str | None
    compatible: tuple[str, ...] = ()
    # A migration began and was not seen to end (failed, interrupted): the schema is unsure.
    pending: str | None = None

    def accepts(self, revision: str | None) -> bool:
        """Whether code written for `revision` runs on this database."""
        return revision is not None and (revision == self.head or revision in self.compatible)


HEAD_TAG = "nnote:schema"
COMPATIBLE_TAG = "nnote:schema-compatible"
PENDING_TAG = "nnote:schema-pending"
UNKNOWN = "unknown"
NONE = "none"  # RDS tag values should not be empty


def database_schema(tags: list[dict[str, str]] | None) -> DatabaseSchema:
    values = {t["Key"]: t["Value"] for t in tags or []}
    head = values.get(HEAD_TAG)
    compatible = values.get(COMPATIBLE_TAG, NONE)
    pending = values.get(PENDING_TAG, NONE)
    return DatabaseSchema(
        None if head in (None, UNKNOWN) else head,
        () if compatible == NONE else tuple(compatible.split()),
        None if pending == NONE else pending,
    )


def pending_tags(schema: Schema | None) -> list[dict[str, str]]:
    """The tag set before a migration starts, replaced when it is seen to end."""
    head = schema.head if schema and schema.head else UNKNOWN
    return [{"Key": PENDING_TAG, "Value": head}]


def database_tags(schema: Schema | None) -> list[dict[str, str]]:
    """The tags that record a migrated database's schema (UNKNOWN: a prebuilt image's)."""
    done = {"Key": PENDING_TAG, "Value": NONE}
    if schema is None or schema.head is None:
        return [{"Key": HEAD_TAG, "Value": UNKNOWN}, {"Key": COMPATIBLE_TAG, "Value": NONE}, done]
    compatible = ""
    for revision in schema.compatible_revisions():
        if len(compatible) + len(revision) + 1 > TAG_LIMIT:
            break  # fewer than all: a rollback is refused sooner, never allowed wrongly
        compatible = f"{compatible} {revision}".strip()
    return [
        {"Key": HEAD_TAG, "Value": schema.head},
        {"Key": COMPATIBLE_TAG, "Value": compatible or NONE},
        done,
    ]


@dataclass(frozen=True)
class Transition:
    """What a release does to the database's schema."""

    kind: str  # none | upgrade | older | unknown
    current: str | None
    wanted: str | None
    steps: tuple[str, ...] = ()

    @property
    def migrates(self) -> bool:
        return self.kind in ("upgrade", "unknown")

    def describe(self) -> str:
        before = self.current or "(none recorded)"
        if self.kind == "upgrade":
            count = len(self.steps)
            return f"migration: {before} -> {self.wanted} ({count} step{'s' * (count != 1)})"
        if self.kind == "older":
            return f"schema: the database is at {before}, newer than this release's {self.wanted}"
        if self.kind == "unknown":
            return "migration: the image's schema is unknown; the migration task will run"
        return f"schema: {before}, unchanged"


def transition(source: Schema | None, database: DatabaseSchema) -> Transition:
    if source is None or source.head is None:
        return Transition("unknown", database.head, None)
    if source.head == database.head:
        return Transition("none", database.head, source.head)
    if not source.knows(database.head):
        # The database has migrations this source does not: deploying it is a rollback.
        return Transition("older", database.head, source.head)
    steps = tuple(source.steps_from(database.head))
    return Transition("upgrade", database.head, source.head, steps)
