"""initial schema: the whole mission's data model

Revision ID: 0001_initial
Revises: (none)
Create Date: 2026-11-24 03:31:28.327606

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('inbound_webhook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_webhook')),
    sa.UniqueConstraint('kind', 'sid', name=op.f('uq_inbound_webhook_kind_sid'))
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('phone_type', sa.Enum('mobile', 'fixed', name='phonetype', native_enum=False, length=24), nullable=False),
    sa.Column('phone2', sa.String(length=20), nullable=True),
    sa.Column('phone2_type', sa.Enum('mobile', 'fixed', name='phonetype', native_enum=False, length=24), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sms_opt_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('call_opt_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('email_opt_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('phone', name=op.f('uq_person_phone'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_phone2'), ['phone2'], unique=False)

    op.create_table('pin_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_failure'))
    )
    with op.batch_alter_table('pin_failure', schema=None) as batch_op:
        batch_op.create_index('ix_pin_failure_phone_at', ['phone', 'at'], unique=False)

    op.create_table('zone',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_zone')),
    sa.UniqueConstraint('code', name=op.f('uq_zone_code'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], name=op.f('fk_audit_event_actor_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_event_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('officer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('zone_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_officer_person_id_person')),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], name=op.f('fk_officer_zone_id_zone')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_officer')),
    sa.UniqueConstraint('person_id', name=op.f('uq_officer_person_id'))
    )
    with op.batch_alter_table('officer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_officer_zone_id'), ['zone_id'], unique=False)

    op.create_table('partnership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('zone_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('charter', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], name=op.f('fk_partnership_zone_id_zone')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partnership')),
    sa.UniqueConstraint('code', name=op.f('uq_partnership_code'))
    )
    with op.batch_alter_table('partnership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partnership_zone_id'), ['zone_id'], unique=False)

    op.create_table('recording',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delete_after', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['person.id'], name=op.f('fk_recording_author_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_recording_provider_sid')),
    sa.UniqueConstraint('token', name=op.f('uq_recording_token'))
    )
    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=12), nullable=False),
    sa.Column('origin', sa.Enum('sms', 'phone', 'web', 'api', name='alertorigin', native_enum=False, length=24), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('urgency', sa.Enum('urgent', 'non_urgent', 'general', name='urgency', native_enum=False, length=24), nullable=False),
    sa.Column('state', sa.Enum('awaiting_release', 'released', 'rejected', 'delivering', 'closed', name='alertstate', native_enum=False, length=24), nullable=False),
    sa.Column('close_reason', sa.Enum('all_confirmed', 'exhausted', 'expired', 'cancelled', name='closereason', native_enum=False, length=24), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('exercise', sa.Boolean(), nullable=False),
    sa.Column('all_clear_text', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['person.id'], name=op.f('fk_alert_author_id_person')),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_alert_recording_id_recording')),
    sa.ForeignKeyConstraint(['released_by_id'], ['person.id'], name=op.f('fk_alert_released_by_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert')),
    sa.UniqueConstraint('reference', name=op.f('uq_alert_reference'))
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_state'), ['state'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('member', 'coordinator', 'steering', name='role', native_enum=False, length=24), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partnership_id'], ['partnership.id'], name=op.f('fk_membership_partnership_id_partnership'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_membership_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('person_id', 'partnership_id', name=op.f('uq_membership_person_id_partnership_id'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_partnership_id'), ['partnership_id'], unique=False)

    op.create_table('alert_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_alert_target_alert_id_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partnership_id'], ['partnership.id'], name=op.f('fk_alert_target_partnership_id_partnership')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_target')),
    sa.UniqueConstraint('alert_id', 'partnership_id', name=op.f('uq_alert_target_alert_id_partnership_id'))
    )
    with op.batch_alter_table('alert_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_target_partnership_id'), ['partnership_id'], unique=False)

    op.create_table('alert_transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.Enum('awaiting_release', 'released', 'rejected', 'delivering', 'closed', name='alertstate', native_enum=False, length=24), nullable=True),
    sa.Column('to_state', sa.Enum('awaiting_release', 'released', 'rejected', 'delivering', 'closed', name='alertstate', native_enum=False, length=24), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], name=op.f('fk_alert_transition_actor_id_person')),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_alert_transition_alert_id_alert'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_transition'))
    )
    with op.batch_alter_table('alert_transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_transition_alert_id'), ['alert_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'email', name='channel', native_enum=False, length=24), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('planned', 'queued', 'sent', 'ringing', 'in_progress', 'delivered', 'completed', 'busy', 'no_answer', 'failed', 'undelivered', 'canceled', 'skipped', name='deliverystatus', native_enum=False, length=24), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('answered_by', sa.String(length=32), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('cost', sa.Numeric(precision=10, scale=5), nullable=True),
    sa.Column('cost_unit', sa.String(length=3), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_delivery_alert_id_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_delivery_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery')),
    sa.UniqueConstraint('alert_id', 'person_id', 'step', 'attempt', name=op.f('uq_delivery_alert_id_person_id_step_attempt')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_delivery_provider_sid'))
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_person_id'), ['person_id'], unique=False)

    op.create_table('acknowledgement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('call', 'sms', 'email', 'inbound_call', 'web', name='ackchannel', native_enum=False, length=24), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_acknowledgement_alert_id_alert'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'], name=op.f('fk_acknowledgement_delivery_id_delivery')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_acknowledgement_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgement')),
    sa.UniqueConstraint('alert_id', 'person_id', name=op.f('uq_acknowledgement_alert_id_person_id'))
    )
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acknowledgement_person_id'), ['person_id'], unique=False)

    


def downgrade():
    
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acknowledgement_person_id'))

    op.drop_table('acknowledgement')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_person_id'))
        batch_op.drop_index('ix_delivery_due')

    op.drop_table('delivery')
    with op.batch_alter_table('alert_transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_transition_alert_id'))

    op.drop_table('alert_transition')
    with op.batch_alter_table('alert_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_target_partnership_id'))

    op.drop_table('alert_target')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_partnership_id'))

    op.drop_table('membership')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_state'))
        batch_op.drop_index(batch_op.f('ix_alert_author_id'))

    op.drop_table('alert')
    op.drop_table('recording')
    with op.batch_alter_table('partnership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partnership_zone_id'))

    op.drop_table('partnership')
    with op.batch_alter_table('officer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_officer_zone_id'))

    op.drop_table('officer')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_subject')
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
    op.drop_table('zone')
    with op.batch_alter_table('pin_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_pin_failure_phone_at')

    op.drop_table('pin_failure')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_phone2'))

    op.drop_table('person')
    op.drop_table('inbound_webhook')
    
