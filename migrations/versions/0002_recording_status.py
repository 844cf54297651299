"""recording status: pending, ready, failed, deleted; the carrier's URL; why it failed

Revision ID: 0002_recording_status
Revises: 0001_initial
Create Date: 2026-11-24 23:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_recording_status'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():
    # batch_alter_table: SQLite cannot add a column with a constraint otherwise.
    with op.batch_alter_table('recording', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'status',
            sa.Enum('pending', 'ready', 'failed', 'deleted', name='recordingstatus',
                    native_enum=False, length=24),
            server_default='pending',
            nullable=False,
        ))
        batch_op.add_column(sa.Column('provider_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('error', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('recording', schema=None) as batch_op:
        batch_op.drop_column('error')
        batch_op.drop_column('provider_url')
        batch_op.drop_column('status')
