"""slack requests: a signed Slack request acts once, even if it is sent again

Revision ID: 0010_slack_requests
Revises: 0009_status_update_phase
Create Date: 2026-12-04 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010_slack_requests'
down_revision = '0009_status_update_phase'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slack_requests',
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('signature', name=op.f('pk_slack_requests'))
    )
    with op.batch_alter_table('slack_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_requests_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    # Without the table, a signed request sent again within its five minutes would act again.
    with op.batch_alter_table('slack_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_requests_received_at'))
    op.drop_table('slack_requests')
