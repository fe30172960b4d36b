"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 09:20:30.899951
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('default_region', sa.String(length=2), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), server_default='', nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('revoked_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_api_keys_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_account_id'), ['account_id'], unique=False)

    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site_key', sa.String(length=40), nullable=False),
    sa.Column('allowed_domains', sa.Text(), nullable=False),
    sa.Column('own_number', sa.String(length=16), nullable=False),
    sa.Column('forward_to', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sites_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('site_key', name=op.f('uq_sites_site_key'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sites_account_id'), ['account_id'], unique=False)

    op.create_table('pools',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('hold_seconds', sa.Integer(), nullable=False),
    sa.Column('cooldown_seconds', sa.Integer(), nullable=False),
    sa.Column('overflow_number', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('retired_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_pools_account_id_accounts')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_pools_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pools')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_pools_site_id_name'))
    )
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pools_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pools_site_id'), ['site_id'], unique=False)

    op.create_table('touchpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('vid', sa.String(length=64), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('referrer', sa.String(length=2048), nullable=True),
    sa.Column('utm_source', sa.String(length=200), nullable=True),
    sa.Column('utm_medium', sa.String(length=200), nullable=True),
    sa.Column('utm_campaign', sa.String(length=200), nullable=True),
    sa.Column('utm_term', sa.String(length=200), nullable=True),
    sa.Column('utm_content', sa.String(length=200), nullable=True),
    sa.Column('gclid', sa.String(length=200), nullable=True),
    sa.Column('gbraid', sa.String(length=200), nullable=True),
    sa.Column('wbraid', sa.String(length=200), nullable=True),
    sa.Column('msclkid', sa.String(length=200), nullable=True),
    sa.Column('yclid', sa.String(length=200), nullable=True),
    sa.Column('fbclid', sa.String(length=200), nullable=True),
    sa.Column('pool_id', sa.Integer(), nullable=True),
    sa.Column('sig', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_touchpoints_account_id_accounts')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_touchpoints_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touchpoints'))
    )
    with op.batch_alter_table('touchpoints', schema=None) as batch_op:
        batch_op.create_index('ix_touchpoints_account_ts', ['account_id', 'ts'], unique=False)
        batch_op.create_index('ix_touchpoints_visitor', ['site_id', 'vid', 'ts'], unique=False)

    op.create_table('pool_exhaustions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('vid', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_pool_exhaustions_pool_id_pools')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_pool_exhaustions_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_exhaustions'))
    )
    with op.batch_alter_table('pool_exhaustions', schema=None) as batch_op:
        batch_op.create_index('ix_pool_exhaustions_pool_ts', ['pool_id', 'ts'], unique=False)

    op.create_table('tracking_numbers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('e164', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=True),
    sa.Column('forward_to', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('medium', sa.String(length=200), nullable=True),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('keyword', sa.String(length=200), nullable=True),
    sa.Column('placement', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('free_at', sa.Float(), server_default='0', nullable=False),
    sa.Column('last_leased_at', sa.Float(), server_default='0', nullable=False),
    sa.Column('current_lease_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('retired_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_tracking_numbers_account_id_accounts')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_tracking_numbers_pool_id_pools')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_numbers')),
    sa.UniqueConstraint('e164', name=op.f('uq_tracking_numbers_e164'))
    )
    with op.batch_alter_table('tracking_numbers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracking_numbers_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_tracking_numbers_pool_lru', ['pool_id', 'status', 'last_leased_at'], unique=False)

    op.create_table('leases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('number_id', sa.Integer(), nullable=False),
    sa.Column('vid', sa.String(length=64), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('last_seen_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_leases_account_id_accounts')),
    sa.ForeignKeyConstraint(['number_id'], ['tracking_numbers.id'], name=op.f('fk_leases_number_id_tracking_numbers')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_leases_pool_id_pools')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_leases_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index('ix_leases_number_started', ['number_id', 'started_at'], unique=False)
        batch_op.create_index('ix_leases_open_visitor', ['site_id', 'vid'], unique=False, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.create_index('ix_leases_pool_started', ['pool_id', 'started_at'], unique=False)
        batch_op.create_index('uq_leases_open_number', ['number_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))

    op.create_table('lease_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lease_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], name=op.f('fk_lease_events_lease_id_leases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lease_events'))
    )
    with op.batch_alter_table('lease_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lease_events_lease_id'), ['lease_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lease_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lease_events_lease_id'))

    op.drop_table('lease_events')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index('uq_leases_open_number', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index('ix_leases_pool_started')
        batch_op.drop_index('ix_leases_open_visitor', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index('ix_leases_number_started')

    op.drop_table('leases')
    with op.batch_alter_table('tracking_numbers', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_numbers_pool_lru')
        batch_op.drop_index(batch_op.f('ix_tracking_numbers_account_id'))

    op.drop_table('tracking_numbers')
    with op.batch_alter_table('pool_exhaustions', schema=None) as batch_op:
        batch_op.drop_index('ix_pool_exhaustions_pool_ts')

    op.drop_table('pool_exhaustions')
    with op.batch_alter_table('touchpoints', schema=None) as batch_op:
        batch_op.drop_index('ix_touchpoints_visitor')
        batch_op.drop_index('ix_touchpoints_account_ts')

    op.drop_table('touchpoints')
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pools_site_id'))
        batch_op.drop_index(batch_op.f('ix_pools_account_id'))

    op.drop_table('pools')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_account_id'))

    op.drop_table('sites')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_account_id'))

    op.drop_table('api_keys')
    op.drop_table('accounts')
