"""The core's tables (SQLAlchemy Core). Changes here need an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    # LTI 1.1: the consumer key is public, the shared secret is encrypted at rest.
    Column("lti11_key", String(255), unique=True),
    Column("lti11_secret", Text),
    Column("options", JSON, nullable=False, default=dict),
    Column("enabled_plugins", JSON, nullable=False, default=list),
    Column("auto_approve_registrations", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

platforms = Table(
    "platforms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    Column("lms", String(50), nullable=False),
    Column("issuer", String(500), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("auth_login_url", String(1000), nullable=False),
    Column("auth_token_url", String(1000), nullable=False),
    Column("jwks_url", String(1000), nullable=False),
    # active: launches accepted; pending: dynamically registered, awaiting an admin;
    # disabled: kept but refused.
    Column("status", String(20), nullable=False, default="active"),
    Column("source", String(20), nullable=False, default="manual"),
    Column("name", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("issuer", "client_id", name="uq_platforms_issuer_client"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("platform_id", Integer, ForeignKey("platforms.id", ondelete="CASCADE"), nullable=False),
    Column("deployment_id", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("platform_id", "deployment_id", name="uq_deployments_platform_deployment"),
)

tool_keys = Table(
    "tool_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set when a newer key takes over; the key stays published until its tokens expire.
    Column("retired_at", DateTime(timezone=True)),
)

protocol_state = Table(
    "protocol_state",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_protocol_state_expires_at", protocol_state.c.expires_at)

courses = Table(
    "courses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    Column("lms", String(50), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("context_id", String(255), nullable=False),
    Column("lms_course_id", String(255)),
    Column("title", String(500)),
    Column("label", String(255)),
    Column("history", JSON, nullable=False, default=list),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_launch_at", DateTime(timezone=True), nullable=False),
    # The LTI 1.3 platform of the latest launch (0006), for platform-scoped plugin settings.
    Column("platform_id", Integer, ForeignKey("platforms.id", ondelete="SET NULL")),
    UniqueConstraint("credential_id", "domain", "context_id", name="uq_courses_credential_course"),
)

launch_log = Table(
    "launch_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("credential_id", Integer, ForeignKey("credentials.id", ondelete="SET NULL")),
    Column("lti_version", String(5)),
    Column("lms", String(50)),
    Column("outcome", String(10), nullable=False),
    Column("code", String(50)),
    Column("message", Text),
    Column("issuer", String(500)),
    Column("client_id", String(255)),
    Column("deployment_id", String(255)),
    Column("user_id", String(255)),
    Column("context_id", String(255)),
    Column("domain", String(255)),
)
Index("ix_launch_log_credential_at", launch_log.c.credential_id, launch_log.c.at)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(100), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

plugin_settings = Table(
    "plugin_settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    Column("platform_id", Integer, ForeignKey("platforms.id", ondelete="CASCADE")),
    Column("plugin", String(50), nullable=False),
    Column("key", String(100), nullable=False),
    Column("value", JSON),
    UniqueConstraint(
        "credential_id", "platform_id", "plugin", "key", name="uq_plugin_settings_scope_key"
    ),
)

# -- the admin console (migration 0002) -------------------------------------------------------

admins = Table(
    "admins",
    metadata,
    Column("id", Integer, primary_key=True),
    # Stored in lower case: an admin signs in with their email however they type it.
    Column("email", String(255), nullable=False, unique=True),
    # ``scrypt$v1$...`` (ltipro.passwords): the format names its parameters, so they can
    # be raised later and older hashes still verify.
    Column("password_hash", String(255), nullable=False),
    Column("is_superuser", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True)),
)

admin_credentials = Table(
    "admin_credentials",
    metadata,
    Column(
        "admin_id",
        Integer,
        ForeignKey("admins.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "credential_id",
        Integer,
        ForeignKey("credentials.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    # An admin's email, "cli", or "api:<key prefix>".
    Column("actor", String(255), nullable=False),
    # Kept when the credential is deleted, with its name, so the trail outlives it.
    Column("credential_id", Integer, ForeignKey("credentials.id", ondelete="SET NULL")),
    Column("credential_name", String(100)),
    Column("setting", String(255), nullable=False),
    # JSON text; a secret is recorded as "(changed)", never its value.
    Column("old_value", Text),
    Column("new_value", Text),
)
Index("ix_audit_log_credential_at", audit_log.c.credential_id, audit_log.c.at)

# The meetings' tables and the job queue's live in their own modules on the same metadata.
from ltipro.imports import tables as _import_tables  # noqa: E402, F401
from ltipro.storage import calendar_tables as _calendar_tables  # noqa: E402, F401
from ltipro.storage import feed_tables as _feed_tables  # noqa: E402, F401
from ltipro.storage import jobs_tables as _jobs_tables  # noqa: E402, F401
from ltipro.storage import meetings_tables as _meetings_tables  # noqa: E402, F401
