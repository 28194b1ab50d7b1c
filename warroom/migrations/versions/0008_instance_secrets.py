"""instance secrets: one status-page link secret for every process of an installation

Revision ID: 0008_instance_secrets
Revises: 0007_detection
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008_instance_secrets'
down_revision = '0007_detection'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('instance_secrets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_instance_secrets'))
    )


def downgrade() -> None:
    # Links signed with a stored secret stop working unless the secret is set again
    # (WARROOM_STATUSPAGE_SECRET) or the file it was imported from is still there.
    op.drop_table('instance_secrets')
