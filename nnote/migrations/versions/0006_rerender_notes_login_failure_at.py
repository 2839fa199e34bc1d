"""stored renderings made again (named checklist boxes, bare links), login_failure by time

Revision ID: 0006_rerender_notes
Revises: 0005_notes_version
Create Date: 2026-12-04 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_rerender_notes"
down_revision = "0005_notes_version"
branch_labels = None
depends_on = None

# Expand, not contract: no column changes, and code from before this migration (0005's) runs
# on it as it ran before. Its notes become stale (`rendered_at` NULL), which that code knows
# how to handle: it renders them again when it meets them, as it does for rows older code
# wrote. While it serves beside this release (a rollout), what it renders again is its own
# rendering (without the new links and checkbox names) and counts as fresh: such a note
# catches up at its next edit. The index is one more that older code never names.
backward_compatible = True


def upgrade():
    # The renderer changed for two kinds of note only: those with checklist boxes (now named
    # after their item) and those that may hold a bare address (now a link). Their stored
    # renderings are out of date: each is rendered again when next shown or swept
    # (nnote.derived), a page's worth at a time, not here. Other notes render as before and
    # keep theirs (a user with 5,000 notes would otherwise wait on some 25 slow first
    # pages). Search text and tags do not depend on the renderer: they stay usable meanwhile.
    note = sa.table(
        "note",
        sa.column("rendered_at", sa.DateTime()),
        sa.column("html", sa.Text()),
        sa.column("body", sa.Text()),
    )
    changed = sa.or_(
        note.c.html.contains('class="task-box"'),
        note.c.body.contains("://"),
        sa.func.lower(note.c.body).contains("mailto:"),
    )
    outdated = sa.and_(note.c.rendered_at.is_not(None), changed)
    op.execute(note.update().where(outdated).values(rendered_at=None))
    # Each write of nnote.throttle deletes the rows older than its window: by `at` alone,
    # which ix_login_failure_key_at (key first) cannot serve.
    op.create_index("ix_login_failure_at", "login_failure", ["at"])


def downgrade():
    # In place, not batch mode: on SQLite a batch copies and drops the table. The renderings
    # stay stale: the code from before renders them again as it meets them.
    op.drop_index("ix_login_failure_at", table_name="login_failure")
