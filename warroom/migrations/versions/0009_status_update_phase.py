"""status update phase: which public phase (investigating, identified, monitoring) an update set

Revision ID: 0009_status_update_phase
Revises: 0008_instance_secrets
Create Date: 2026-12-04 17:02:10.912394
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009_status_update_phase'
down_revision = '0008_instance_secrets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: rows written before have no phase, and the status
    # page reads a missing phase as "kept the one in force" (investigating at first).
    with op.batch_alter_table('status_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phase', sa.String(length=16), nullable=True))


def downgrade() -> None:
    # The phases are lost; the status page shows open incidents as investigating again.
    with op.batch_alter_table('status_updates', schema=None) as batch_op:
        batch_op.drop_column('phase')
