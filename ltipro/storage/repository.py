"""Queries on the core's tables, in the words of the people who use them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ltipro.crypto import SecretBox, generate_rsa_key, hash_api_secret
from ltipro.observability import launch_recorded
from ltipro.options import CredentialOptions
from ltipro.storage.database import (
    autocommit,
    connect,
    own_autocommit,
    shared_reads,
    shared_statements,
    shared_transaction,
    stored_utc,
)
from ltipro.storage.schema import (
    api_keys,
    courses,
    credentials,
    deployments,
    launch_log,
    platforms,
    plugin_settings,
    tool_keys,
)


class _Columns:
    """Attribute access over a mapping, as a result row gives it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class NotFound(LookupError):
    """A credential, platform or key that does not exist; the message names it."""


class Conflict(ValueError):
    """A new record clashes with one that exists; the message says which."""


# The statements of every login and launch, built once: a statement object reused with
# new parameters keeps its cache key, so SQLAlchemy finds its compiled form without
# walking the statement again (building one per call cost more than running it).
# A credential read beside another table comes as columns labelled ``cred__<name>``.
_CREDENTIAL_LABELS = tuple((c.name, f"cred__{c.name}") for c in credentials.c)


def _labelled_credential(table: Any) -> list[Any]:
    """``credentials`` (or an alias of it) as ``cred__…`` columns."""
    return [table.c[name].label(label) for name, label in _CREDENTIAL_LABELS]


_platform_credential = credentials.alias("platform_credential")
_PLATFORMS_WITH_CREDENTIALS = (
    select(
        platforms,
        *_labelled_credential(_platform_credential),
        deployments.c.deployment_id.label("deployment_id"),
        deployments.c.enabled.label("deployment_enabled"),
    )
    .join(_platform_credential, _platform_credential.c.id == platforms.c.credential_id)
    .outerjoin(deployments, deployments.c.platform_id == platforms.c.id)
    .order_by(platforms.c.id, deployments.c.id)
)
_PLATFORM_BY_ID = _PLATFORMS_WITH_CREDENTIALS.where(platforms.c.id == bindparam("p_id"))
_PLATFORMS_BY_ISSUER = _PLATFORMS_WITH_CREDENTIALS.where(
    platforms.c.issuer == bindparam("p_issuer")
)
_PLATFORMS_BY_ISSUER_AND_CLIENT = _PLATFORMS_BY_ISSUER.where(
    platforms.c.client_id == bindparam("p_client_id")
)
_PLUGIN_SETTINGS = select(plugin_settings).where(
    plugin_settings.c.credential_id == bindparam("s_credential_id"),
    plugin_settings.c.plugin == bindparam("s_plugin"),
)
_LAUNCH_LOG_INSERT = insert(launch_log)
# The course, its credential and its platform's id and issuer (``platform__id``,
# ``platform__issuer``: ``None`` when the course names no platform), for a job.
_COURSE_WITH_LMS = (
    select(
        courses,
        *_labelled_credential(credentials),
        platforms.c.id.label("platform__id"),
        platforms.c.issuer.label("platform__issuer"),
    )
    .join(credentials, credentials.c.id == courses.c.credential_id)
    .outerjoin(platforms, platforms.c.id == courses.c.platform_id)
    .where(courses.c.id == bindparam("course_id"))
)
_course_statements: dict[int | None, tuple[Any, Any]] = {}


def _course_writes(question: ColumnElement[Any] | None) -> tuple[Any, Any]:
    """The course's update and insert, each returning its id (and ``question``'s answer).

    The columns written come with the parameters; the statements are built once per
    question (there is one, or none).
    """
    key = None if question is None else id(question)
    found = _course_statements.get(key)
    if found is not None:
        return found
    returned: tuple[ColumnElement[Any], ...] = (courses.c.id,)
    if question is not None:
        returned += (question.label("answer"),)
    refresh = (
        update(courses)
        .where(
            courses.c.credential_id == bindparam("c_credential_id"),
            courses.c.domain == bindparam("c_domain"),
            courses.c.context_id == bindparam("c_context_id"),
        )
        .returning(*returned)
    )
    made = (refresh, insert(courses).returning(*returned))
    if len(_course_statements) < 8:  # questions are module constants; never grow unbounded
        _course_statements[key] = made
    return made


def _recorded(row: Any, question: ColumnElement[Any] | None) -> tuple[int, Any]:
    """A course write's ``RETURNING`` row: the course's id, and the question's answer."""
    return int(row[0]), (row[1] if question is not None else None)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Credential:
    id: int
    name: str
    lti11_key: str | None
    options: CredentialOptions
    enabled_plugins: tuple[str, ...]
    auto_approve_registrations: bool
    lti11_secret_encrypted: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Platform:
    id: int
    credential_id: int
    lms: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    jwks_url: str
    status: str
    source: str
    name: str | None
    deployments: tuple[tuple[str, bool], ...] = ()
    # The platform's credential, when it was read with it (``find_platforms``).
    credential: Credential | None = field(default=None, repr=False, compare=False)

    def deployment_enabled(self, deployment_id: str) -> bool | None:
        """``True``/``False`` for a known deployment, ``None`` for an unknown one."""
        for known, enabled in self.deployments:
            if known == deployment_id:
                return enabled
        return None


@dataclass(frozen=True)
class ToolKey:
    kid: str
    private_key: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


class Repository:
    """All reads and writes of the core's tables."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One transaction for the calls inside (see :func:`shared_transaction`)."""
        return shared_transaction(self.engine)

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One connection for the reads inside (see :func:`shared_reads`)."""
        return shared_reads(self.engine)

    def statements(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One connection for reads and single-statement writes that need no transaction
        in common (see :func:`shared_statements`)."""
        return shared_statements(self.engine)

    # -- credentials ----------------------------------------------------------------------

    def _labelled_credential(self, row: Any) -> Credential:
        """The credential in a row that carries it as ``cred__…`` columns."""
        mapping = row._mapping
        return self._credential(
            _Columns({name: mapping[label] for name, label in _CREDENTIAL_LABELS})
        )

    def _credential(self, row: Any) -> Credential:
        return Credential(
            id=row.id,
            name=row.name,
            lti11_key=row.lti11_key,
            options=CredentialOptions.from_json(row.options),
            enabled_plugins=tuple(row.enabled_plugins or ()),
            auto_approve_registrations=bool(row.auto_approve_registrations),
            lti11_secret_encrypted=row.lti11_secret,
        )

    async def create_credential(
        self,
        name: str,
        enabled_plugins: Sequence[str],
        lti11_key: str | None = None,
        lti11_secret: str | None = None,
        auto_approve_registrations: bool = False,
    ) -> Credential:
        values = {
            "name": name,
            "lti11_key": lti11_key,
            "lti11_secret": self.box.encrypt(lti11_secret) if lti11_secret else None,
            "options": CredentialOptions().to_json(),
            "enabled_plugins": list(enabled_plugins),
            "auto_approve_registrations": auto_approve_registrations,
            "created_at": now(),
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(credentials).values(**values))
        except IntegrityError:
            if await self.find_credential(name):
                raise Conflict(f"a credential named {name!r} already exists") from None
            raise Conflict(
                f"another credential already uses the LTI 1.1 key {lti11_key!r}"
            ) from None
        return await self.credential(name)

    async def find_credential(self, name: str) -> Credential | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(credentials).where(credentials.c.name == name))
            ).first()
        return self._credential(row) if row else None

    async def credential(self, name: str) -> Credential:
        found = await self.find_credential(name)
        if found is None:
            raise NotFound(f"there is no credential named {name!r} (see `ltipro credentials list`)")
        return found

    async def credential_by_id(self, credential_id: int) -> Credential:
        async with connect(self.engine) as conn:
            row = (
                await conn.execute(select(credentials).where(credentials.c.id == credential_id))
            ).first()
        if row is None:
            raise NotFound(f"there is no credential with id {credential_id}")
        return self._credential(row)

    async def credential_by_lti11_key(self, key: str) -> Credential | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(credentials).where(credentials.c.lti11_key == key))
            ).first()
        return self._credential(row) if row else None

    async def list_credentials(self) -> list[Credential]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(credentials).order_by(credentials.c.name))).all()
        return [self._credential(r) for r in rows]

    def lti11_secret(self, credential: Credential) -> str | None:
        if not credential.lti11_secret_encrypted:
            return None
        return self.box.decrypt(credential.lti11_secret_encrypted)

    async def set_enabled_plugins(self, credential: Credential, names: Iterable[str]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(credentials)
                .where(credentials.c.id == credential.id)
                .values(enabled_plugins=sorted(set(names)))
            )

    async def set_options(self, credential: Credential, options: CredentialOptions) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(credentials)
                .where(credentials.c.id == credential.id)
                .values(options=options.to_json())
            )

    # -- platforms and deployments ----------------------------------------------------------

    async def add_platform(
        self,
        credential: Credential,
        *,
        lms: str,
        issuer: str,
        client_id: str,
        deployment_ids: Sequence[str],
        auth_login_url: str,
        auth_token_url: str,
        jwks_url: str,
        status: str = "active",
        source: str = "manual",
        name: str | None = None,
    ) -> Platform:
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(platforms).values(
                        credential_id=credential.id,
                        lms=lms,
                        issuer=issuer,
                        client_id=client_id,
                        auth_login_url=auth_login_url,
                        auth_token_url=auth_token_url,
                        jwks_url=jwks_url,
                        status=status,
                        source=source,
                        name=name,
                        created_at=now(),
                    )
                )
                platform_id = result.inserted_primary_key[0]  # type: ignore[index]
                for deployment_id in dict.fromkeys(deployment_ids):
                    await conn.execute(
                        insert(deployments).values(
                            platform_id=platform_id,
                            deployment_id=deployment_id,
                            enabled=True,
                            created_at=now(),
                        )
                    )
        except IntegrityError:
            raise Conflict(
                f"a platform with issuer {issuer!r} and client id {client_id!r} is already "
                "registered"
            ) from None
        return await self.platform(platform_id)

    async def _platform_rows(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[Platform]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        deps = (
            await conn.execute(
                select(
                    deployments.c.platform_id, deployments.c.deployment_id, deployments.c.enabled
                )
                .where(deployments.c.platform_id.in_(ids))
                .order_by(deployments.c.id)
            )
        ).all()
        by_platform: dict[int, list[tuple[str, bool]]] = {}
        for dep in deps:
            by_platform.setdefault(dep.platform_id, []).append(
                (dep.deployment_id, bool(dep.enabled))
            )
        return [self._platform(r, tuple(by_platform.get(r.id, ()))) for r in rows]

    @staticmethod
    def _platform(
        r: Any, deps: tuple[tuple[str, bool], ...], credential: Credential | None = None
    ) -> Platform:
        return Platform(
            id=r.id,
            credential_id=r.credential_id,
            lms=r.lms,
            issuer=r.issuer,
            client_id=r.client_id,
            auth_login_url=r.auth_login_url,
            auth_token_url=r.auth_token_url,
            jwks_url=r.jwks_url,
            status=r.status,
            source=r.source,
            name=r.name,
            deployments=deps,
            credential=credential,
        )

    async def platform(self, platform_id: int) -> Platform:
        """The platform, with its deployments and credential."""
        found = await self._platforms_with_credentials(_PLATFORM_BY_ID, {"p_id": platform_id})
        if not found:
            raise NotFound(f"there is no platform with id {platform_id}")
        return found[0]

    async def find_platforms(self, issuer: str, client_id: str | None = None) -> list[Platform]:
        """Registrations with this issuer (and client id, when given), with their credential."""
        if client_id is None:
            return await self._platforms_with_credentials(
                _PLATFORMS_BY_ISSUER, {"p_issuer": issuer}
            )
        return await self._platforms_with_credentials(
            _PLATFORMS_BY_ISSUER_AND_CLIENT, {"p_issuer": issuer, "p_client_id": client_id}
        )

    async def _platforms_with_credentials(
        self, query: Any, parameters: dict[str, Any]
    ) -> list[Platform]:
        """Platforms, their deployments and their credential, in one statement.

        Every login and launch starts by reading these, so they come back together.
        """
        async with connect(self.engine) as conn:
            rows = (await conn.execute(query, parameters)).all()
        found: dict[int, tuple[Any, Credential, list[tuple[str, bool]]]] = {}
        for row in rows:
            if row.id not in found:
                found[row.id] = (row, self._labelled_credential(row), [])
            if row.deployment_id is not None:
                found[row.id][2].append((row.deployment_id, bool(row.deployment_enabled)))
        return [
            self._platform(row, tuple(deps), credential) for row, credential, deps in found.values()
        ]

    async def list_platforms(self, credential: Credential | None = None) -> list[Platform]:
        query = select(platforms).order_by(platforms.c.id)
        if credential is not None:
            query = query.where(platforms.c.credential_id == credential.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            return await self._platform_rows(conn, rows)

    async def set_platform_status(self, platform_id: int, status: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(platforms).where(platforms.c.id == platform_id).values(status=status)
            )
        if result.rowcount == 0:
            raise NotFound(f"there is no platform with id {platform_id}")

    async def set_deployment_enabled(
        self, platform_id: int, deployment_id: str, enabled: bool
    ) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(deployments)
                .where(
                    and_(
                        deployments.c.platform_id == platform_id,
                        deployments.c.deployment_id == deployment_id,
                    )
                )
                .values(enabled=enabled)
            )
        if result.rowcount == 0:
            raise NotFound(f"platform {platform_id} has no deployment {deployment_id!r}")

    async def add_deployment(self, platform_id: int, deployment_id: str) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(deployments).values(
                        platform_id=platform_id,
                        deployment_id=deployment_id,
                        enabled=True,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            raise Conflict(f"deployment {deployment_id!r} is already registered") from None

    # -- the tool's keys ----------------------------------------------------------------------

    async def tool_keys(self) -> list[ToolKey]:
        """Every stored key, newest first."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(tool_keys).order_by(tool_keys.c.created_at.desc()))
            ).all()
        return [
            ToolKey(
                kid=r.kid,
                private_key=self.box.decrypt(r.private_key),
                public_jwk=dict(r.public_jwk),
                created_at=stored_utc(r.created_at) or now(),
                retired_at=stored_utc(r.retired_at),
            )
            for r in rows
        ]

    async def rotate_tool_key(self, keep_previous_for: timedelta) -> tuple[ToolKey, list[str]]:
        """Make a new signing key, retire the current one, drop keys past their grace period.

        Returns the new key and the ids of the keys removed.
        """
        kid, pem, jwk = generate_rsa_key()
        at = now()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tool_keys).where(tool_keys.c.retired_at.is_(None)).values(retired_at=at)
            )
            old = (
                await conn.execute(
                    select(tool_keys.c.kid).where(tool_keys.c.retired_at < at - keep_previous_for)
                )
            ).all()
            removed = [r.kid for r in old]
            if removed:
                await conn.execute(delete(tool_keys).where(tool_keys.c.kid.in_(removed)))
            await conn.execute(
                insert(tool_keys).values(
                    kid=kid,
                    private_key=self.box.encrypt(pem),
                    public_jwk=jwk,
                    created_at=at,
                    retired_at=None,
                )
            )
        return ToolKey(kid, pem, jwk, at, None), removed

    # -- courses and the launch log ----------------------------------------------------------

    async def record_course(
        self,
        credential_id: int,
        *,
        lms: str,
        domain: str,
        context_id: str,
        lms_course_id: str | None,
        title: str | None,
        label: str | None,
        history: Sequence[str],
        platform_id: int | None = None,
    ) -> int:
        """Create the course on its first launch, refresh what the LMS says on later ones.

        Returns the course's id (``UPDATE``/``INSERT … RETURNING``), so the launch's first
        page need not look it up again.
        """
        course_id, _ = await self.record_course_asking(
            None,
            credential_id,
            lms=lms,
            domain=domain,
            context_id=context_id,
            lms_course_id=lms_course_id,
            title=title,
            label=label,
            history=history,
            platform_id=platform_id,
        )
        return course_id

    async def record_course_asking(
        self,
        question: ColumnElement[Any] | None,
        credential_id: int,
        *,
        lms: str,
        domain: str,
        context_id: str,
        lms_course_id: str | None,
        title: str | None,
        label: str | None,
        history: Sequence[str],
        platform_id: int | None = None,
    ) -> tuple[int, Any]:
        """:meth:`record_course`, and the answer to ``question`` about the course's row.

        ``question`` is an expression on ``courses`` (an ``EXISTS`` over a table that
        refers to the course, say) that the launch would otherwise ask in a statement and
        a pool checkout of its own; it rides on the ``RETURNING`` of the course's write and
        sees the row as written. Without one, the answer is ``None``.
        """
        at = now()
        values: dict[str, Any] = {
            "lms": lms,
            "lms_course_id": lms_course_id,
            "title": title,
            "label": label,
            "history": list(history),
            "last_launch_at": at,
        }
        if platform_id is not None:  # LTI 1.1 launches name no platform: keep the last one
            values["platform_id"] = platform_id
        refresh, create = _course_writes(question)
        refreshed = {
            "c_credential_id": credential_id,
            "c_domain": domain,
            "c_context_id": context_id,
            **values,
        }
        # Each write is one statement that commits by itself (one round trip on
        # PostgreSQL); the insert's race with another worker is caught below.
        async with own_autocommit(self.engine) as conn:
            found = (await conn.execute(refresh, refreshed)).first()
        if found is not None:
            return _recorded(found, question)
        try:
            async with own_autocommit(self.engine) as conn:
                created = (
                    await conn.execute(
                        create,
                        {
                            "credential_id": credential_id,
                            "domain": domain,
                            "context_id": context_id,
                            "created_at": at,
                            **values,
                        },
                    )
                ).one()
            return _recorded(created, question)
        except IntegrityError:
            # Another worker created it between our update and insert: refresh it.
            async with own_autocommit(self.engine) as conn:
                return _recorded((await conn.execute(refresh, refreshed)).one(), question)

    async def log_launch(self, **values: Any) -> None:
        values.setdefault("at", now())
        for key in ("message", "user_id", "context_id", "issuer", "client_id", "deployment_id"):
            if isinstance(values.get(key), str):
                values[key] = values[key][: 2000 if key == "message" else 255]
        # Joins the launch's transaction (with its session); a refusal's commits by itself.
        async with autocommit(self.engine) as conn:
            await conn.execute(_LAUNCH_LOG_INSERT, values)
        launch_recorded(values.get("lms"), str(values.get("outcome")), values.get("code"))

    async def recent_launches(
        self, credential: Credential | None = None, limit: int = 50
    ) -> list[Any]:
        query = select(launch_log).order_by(launch_log.c.id.desc()).limit(limit)
        if credential is not None:
            query = query.where(launch_log.c.credential_id == credential.id)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def count(self, table: Any) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    # -- API keys --------------------------------------------------------------------------

    async def create_api_key(self, credential: Credential, name: str) -> str:
        """A new API key for the credential; the full key is returned once and never stored."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    credential_id=credential.id,
                    name=name,
                    prefix=prefix,
                    secret_hash=hash_api_secret(secret),
                    created_at=now(),
                )
            )
        return f"ltp_{prefix}_{secret}"

    async def list_api_keys(self, credential: Credential) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(api_keys)
                        .where(api_keys.c.credential_id == credential.id)
                        .order_by(api_keys.c.id)
                    )
                ).all()
            )

    async def revoke_api_key(self, credential: Credential, prefix: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(
                    and_(
                        api_keys.c.credential_id == credential.id,
                        api_keys.c.prefix == prefix,
                        api_keys.c.revoked_at.is_(None),
                    )
                )
                .values(revoked_at=now())
            )
        if result.rowcount == 0:
            raise NotFound(f"credential {credential.name!r} has no active API key {prefix!r}")

    async def credential_for_api_key(self, key: str) -> Credential | None:
        """The credential an API key belongs to, if the key is valid and not revoked."""
        import hmac

        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "ltp":
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(api_keys).where(
                        and_(api_keys.c.prefix == parts[1], api_keys.c.revoked_at.is_(None))
                    )
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, hash_api_secret(parts[2])):
            return None
        return await self.credential_by_id(row.credential_id)

    # -- plugin settings ----------------------------------------------------------------------

    async def plugin_settings(
        self, credential_id: int, plugin: str, platform_id: int | None = None
    ) -> dict[str, Any]:
        """A plugin's stored settings: the credential's, overridden by the platform's."""
        async with connect(self.engine) as conn:
            rows = (
                await conn.execute(
                    _PLUGIN_SETTINGS, {"s_credential_id": credential_id, "s_plugin": plugin}
                )
            ).all()
        out: dict[str, Any] = {}
        for row in sorted(rows, key=lambda r: r.platform_id is not None):
            if row.platform_id is None or row.platform_id == platform_id:
                out[row.key] = row.value
        return out

    async def set_plugin_setting(
        self, credential_id: int, plugin: str, key: str, value: Any, platform_id: int | None = None
    ) -> None:
        where = and_(
            plugin_settings.c.credential_id == credential_id,
            plugin_settings.c.plugin == plugin,
            plugin_settings.c.key == key,
            plugin_settings.c.platform_id.is_(None)
            if platform_id is None
            else plugin_settings.c.platform_id == platform_id,
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(update(plugin_settings).where(where).values(value=value))
            if not result.rowcount:
                await conn.execute(
                    insert(plugin_settings).values(
                        credential_id=credential_id,
                        platform_id=platform_id,
                        plugin=plugin,
                        key=key,
                        value=value,
                    )
                )

    async def stored_plugin_settings(
        self, credential_id: int, plugin: str, platform_id: int | None = None
    ) -> dict[str, Any]:
        """The values stored at exactly one level: the credential's, or one platform's."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(plugin_settings.c.key, plugin_settings.c.value).where(
                        and_(
                            plugin_settings.c.credential_id == credential_id,
                            plugin_settings.c.plugin == plugin,
                            plugin_settings.c.platform_id.is_(None)
                            if platform_id is None
                            else plugin_settings.c.platform_id == platform_id,
                        )
                    )
                )
            ).all()
        return {row.key: row.value for row in rows}

    async def delete_plugin_setting(
        self, credential_id: int, plugin: str, key: str, platform_id: int | None = None
    ) -> bool:
        """Remove one stored value; ``False`` when none was stored."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(plugin_settings).where(
                    and_(
                        plugin_settings.c.credential_id == credential_id,
                        plugin_settings.c.plugin == plugin,
                        plugin_settings.c.key == key,
                        plugin_settings.c.platform_id.is_(None)
                        if platform_id is None
                        else plugin_settings.c.platform_id == platform_id,
                    )
                )
            )
        return bool(result.rowcount)

    # -- a course and its LMS ---------------------------------------------------------------

    async def course_with_lms(self, course_id: int) -> tuple[Any, Credential] | None:
        """The course with row id ``course_id`` and its credential, in one statement.

        What a job needs to reach the course's LMS, read together as the launch reads a
        platform with its credential. The row has the course's columns, and
        ``platform__id`` and ``platform__issuer``: its platform's, or ``None`` when the
        course names none. ``None`` when there is no such course. Inside a
        :meth:`reading` block it runs on the block's connection, so the reads that follow
        (the plugin's settings) share its checkout and transaction.
        """
        async with connect(self.engine) as conn:
            row = (await conn.execute(_COURSE_WITH_LMS, {"course_id": course_id})).first()
        if row is None:
            return None
        return row, self._labelled_credential(row)
