"""a version of each user's notes, for the kept first page of the list

Revision ID: 0005_notes_version
Revises: 0004_note_features
Create Date: 2026-12-03 05:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_notes_version"
down_revision = "0004_note_features"
branch_labels = None
depends_on = None

# Expand, not contract: a column with a default that code from before this migration never
# reads. Its writes do not count the version up, so while it serves beside this release (a
# rollout) a first page this release keeps may miss that write: nnote.listing keeps a page
# for a minute at most, which bounds it.
backward_compatible = True


def upgrade():
    op.add_column(
        "user", sa.Column("notes_version", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade():
    # In place, not batch mode: on SQLite a batch copies and drops the table, and dropping
    # `user` deletes every note and session with it (ON DELETE CASCADE).
    op.drop_column("user", "notes_version")
