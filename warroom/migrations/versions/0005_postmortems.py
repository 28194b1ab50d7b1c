"""postmortem drafts and action items

Revision ID: 0005_postmortems
Revises: 0004
Create Date: 2026-12-03 18:39:57.250593
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005_postmortems'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('action_items',
    sa.Column('incident_number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('due', sa.DateTime(), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('done_by', sa.String(length=100), nullable=True),
    sa.Column('overdue_notified', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('incident_number', 'idx', name=op.f('pk_action_items'))
    )
    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_items_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_items_owner'), ['owner'], unique=False)

    op.create_table('postmortem_drafts',
    sa.Column('incident_number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('submitted_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('incident_number', name=op.f('pk_postmortem_drafts'))
    )


def downgrade() -> None:
    op.drop_table('postmortem_drafts')
    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_items_owner'))
        batch_op.drop_index(batch_op.f('ix_action_items_due'))

    op.drop_table('action_items')
