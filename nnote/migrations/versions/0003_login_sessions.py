"""login sessions, one row per logged-in device

Revision ID: 0003_login_sessions
Revises: 0002_note_pinned
Create Date: 2026-12-02 18:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003_login_sessions"
down_revision = "0002_note_pinned"
branch_labels = None
depends_on = None

# Expand, not contract: a new table that code from before this migration never touches (its
# logins do not use it), so a rollback to it is safe; its users log in again.
backward_compatible = True


def upgrade():
    op.create_table(
        "login_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.create_index("ix_login_session_user_id", ["user_id"], unique=False)


def downgrade():
    # The table takes its indexes with it (MySQL refuses to drop the foreign key's index alone).
    op.drop_table("login_session")
