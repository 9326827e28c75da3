"""what agents observe: VIP owner moves and sampled source addresses

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vip_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("previous_port_id", sa.String(length=36), nullable=True),
        sa.Column("moved_at", sa.Float(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vip_moves_network_id", "vip_moves", ["network_id"])
    op.create_index("ix_vip_moves_network_id_ip_address", "vip_moves", ["network_id", "ip_address"])
    op.create_table(
        "source_samples",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("mac_address", sa.String(length=17), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("packets", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("port_id", "reason", "mac_address", "ip_address"),
    )


def downgrade() -> None:
    op.drop_table("source_samples")
    op.drop_index("ix_vip_moves_network_id_ip_address", table_name="vip_moves")
    op.drop_index("ix_vip_moves_network_id", table_name="vip_moves")
    op.drop_table("vip_moves")
