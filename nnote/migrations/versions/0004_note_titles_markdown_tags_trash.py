"""note titles, stored Markdown renderings, tags, folded search text and the trash

Revision ID: 0004_note_features
Revises: 0003_login_sessions
Create Date: 2026-12-03 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "0004_note_features"
down_revision = "0003_login_sessions"
branch_labels = None
depends_on = None

# Expand, not contract. Code from before this migration (0003's) still runs correctly on it:
# - it inserts notes without the new columns: `title` gets its server default '', the derived
#   columns stay NULL, so `stale` is true and this release renders the note when it meets it;
# - it edits a note's body and sets `updated_at` (to the microsecond now, on MySQL too), so
#   `stale` turns true the same way: a stored rendering, search text or tag never outlives
#   the text it came from;
# - it deletes notes: their tags go with them (ON DELETE CASCADE);
# - it knows no trash: it lists trashed notes as ordinary ones (nothing is lost; this release
#   finds them in the trash again), and its own deletes are final, as they always were.
backward_compatible = True

STALE = "rendered_at IS NULL OR rendered_at <> updated_at"


def _is_mysql():
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _long_text(folded=False):
    if folded:
        return sa.Text().with_variant(
            mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
        )
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _precise_time():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    if _is_mysql():
        # Microseconds, so that an edit by older code always changes `updated_at`.
        op.alter_column("note", "updated_at", type_=mysql.DATETIME(fsp=6), existing_nullable=False)
    # Plain ADD COLUMNs (SQLite can add each of these, the generated one too, without
    # copying the table).
    op.add_column(
        "note", sa.Column("title", sa.String(length=200), server_default="", nullable=False)
    )
    op.add_column("note", sa.Column("trashed_at", sa.DateTime(), nullable=True))
    op.add_column("note", sa.Column("html", _long_text(), nullable=True))
    op.add_column("note", sa.Column("search_text", _long_text(folded=True), nullable=True))
    op.add_column("note", sa.Column("rendered_at", _precise_time(), nullable=True))
    op.add_column("note", sa.Column("stale", sa.Boolean(), sa.Computed(STALE), nullable=True))
    op.create_index(
        "ix_note_listed", "note", ["user_id", "trashed_at", "pinned", "updated_at", "id"]
    )
    op.create_index("ix_note_user_id_stale", "note", ["user_id", "stale"])
    op.create_index("ix_note_trashed_at", "note", ["trashed_at"])
    op.create_table(
        "note_tag",
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column(
            "tag",
            sa.String(length=64).with_variant(
                mysql.VARCHAR(64, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["note.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("note_id", "tag"),
    )
    op.create_index("ix_note_tag_user_id_tag", "note_tag", ["user_id", "tag", "note_id"])


def downgrade():
    # The table takes its indexes with it (MySQL refuses to drop a foreign key's index alone).
    op.drop_table("note_tag")
    # Titles are not lost: older code has no title, so a note's title becomes its first line.
    note = sa.table("note", sa.column("title", sa.String()), sa.column("body", sa.Text()))
    op.execute(
        note.update()
        .where(note.c.title != "")
        .values(body=sa.literal("# ") + note.c.title + sa.literal("\n\n") + note.c.body)
    )
    op.drop_index("ix_note_trashed_at", table_name="note")
    op.drop_index("ix_note_user_id_stale", table_name="note")
    op.drop_index("ix_note_listed", table_name="note")
    # The generated column first: it reads rendered_at and updated_at.
    for column in ("stale", "rendered_at", "search_text", "html", "trashed_at", "title"):
        op.drop_column("note", column)
    if _is_mysql():
        op.alter_column("note", "updated_at", type_=sa.DateTime(), existing_nullable=False)
