"""pinned notes

Revision ID: 0002_note_pinned
Revises: 0001_initial
Create Date: 2026-11-30 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002_note_pinned"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# Expand, not contract: code from before this migration never reads or writes `pinned`, and
# the server default fills it for the rows that code inserts, so a rollback to it is safe.
backward_compatible = True


def upgrade():
    with op.batch_alter_table("note", schema=None) as batch_op:
        # The server default also fills the rows that exist now: they start unpinned.
        batch_op.add_column(
            sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        # Serves both halves of the home page without a sort: the pinned notes, and the
        # unpinned ones paged by id. ix_note_user_id_id stays, for code from before this.
        batch_op.create_index("ix_note_user_id_pinned_id", ["user_id", "pinned", "id"])


def downgrade():
    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.drop_index("ix_note_user_id_pinned_id")
        batch_op.drop_column("pinned")
