"""Admin accounts, the credentials each manages, and the audit log of every change.

Kept apart from :class:`~ltipro.storage.repository.Repository`, which serves launches;
this module serves the admin console, the ``ltipro admins`` and ``ltipro config``
commands and the configuration API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ltipro.options import CredentialOptions
from ltipro.storage.database import stored_utc
from ltipro.storage.repository import Conflict, NotFound, now
from ltipro.storage.schema import admin_credentials, admins, audit_log, credentials, launch_log

# What the audit log records instead of a secret's value.
SECRET_CHANGED = "(changed)"
SECRET_REMOVED = "(removed)"


@dataclass(frozen=True)
class Admin:
    """Someone who signs in to the admin console."""

    id: int
    email: str
    is_superuser: bool
    credential_ids: frozenset[int]
    created_at: datetime
    last_login_at: datetime | None
    password_hash: str = ""

    def manages(self, credential_id: int) -> bool:
        """Superusers manage every credential; other admins the ones given to them."""
        return self.is_superuser or credential_id in self.credential_ids


@dataclass(frozen=True)
class Change:
    """One setting changed, for the audit log.

    ``setting`` names it (``instructor_roles``, ``plugins.canvas``,
    ``plugin_settings.canvas.client_secret``, ...); the values are what an admin reads in
    the log: JSON for options, words for states, :data:`SECRET_CHANGED` for secrets.
    """

    setting: str
    old_value: str | None
    new_value: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    credential_id: int | None
    credential_name: str | None
    setting: str
    old_value: str | None
    new_value: str | None


def option_value_text(value: Any) -> str:
    """An option's value as the audit log shows it: JSON, readable and unambiguous."""
    return json.dumps(value, ensure_ascii=False)


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AdminRepository:
    """Reads and writes of the admin console's tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- admins ---------------------------------------------------------------------------

    async def create_admin(
        self,
        email: str,
        password_hash: str,
        *,
        superuser: bool = False,
        credential_ids: Iterable[int] = (),
    ) -> Admin:
        """A new admin account; :class:`Conflict` when the email has one already."""
        email = normalize_email(email)
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(admins).values(
                        email=email,
                        password_hash=password_hash,
                        is_superuser=superuser,
                        created_at=now(),
                    )
                )
                admin_id = result.inserted_primary_key[0]  # type: ignore[index]
                for credential_id in sorted(set(credential_ids)):
                    await conn.execute(
                        insert(admin_credentials).values(
                            admin_id=admin_id, credential_id=credential_id
                        )
                    )
        except IntegrityError:
            raise Conflict(f"an admin with the email {email!r} already exists") from None
        found = await self.admin_by_id(admin_id)
        assert found is not None
        return found

    async def _admins(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[Admin]:
        if not rows:
            return []
        links = (
            await conn.execute(
                select(admin_credentials).where(
                    admin_credentials.c.admin_id.in_([r.id for r in rows])
                )
            )
        ).all()
        managed: dict[int, set[int]] = {}
        for link in links:
            managed.setdefault(link.admin_id, set()).add(link.credential_id)
        return [
            Admin(
                id=r.id,
                email=r.email,
                is_superuser=bool(r.is_superuser),
                credential_ids=frozenset(managed.get(r.id, ())),
                created_at=stored_utc(r.created_at) or now(),
                last_login_at=stored_utc(r.last_login_at),
                password_hash=r.password_hash,
            )
            for r in rows
        ]

    async def find_admin(self, email: str) -> Admin | None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(admins).where(admins.c.email == normalize_email(email)))
            ).all()
            found = await self._admins(conn, rows)
        return found[0] if found else None

    async def admin_by_id(self, admin_id: int) -> Admin | None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(admins).where(admins.c.id == admin_id))).all()
            found = await self._admins(conn, rows)
        return found[0] if found else None

    async def list_admins(self) -> list[Admin]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(admins).order_by(admins.c.email))).all()
            return await self._admins(conn, rows)

    async def record_login(self, admin_id: int, new_password_hash: str | None = None) -> None:
        """Note a successful sign-in (and store a hash made with today's parameters)."""
        values: dict[str, Any] = {"last_login_at": now()}
        if new_password_hash:
            values["password_hash"] = new_password_hash
        async with self.engine.begin() as conn:
            await conn.execute(update(admins).where(admins.c.id == admin_id).values(**values))

    async def set_password(self, email: str, password_hash: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(admins)
                .where(admins.c.email == normalize_email(email))
                .values(password_hash=password_hash)
            )
        if result.rowcount == 0:
            raise NotFound(f"there is no admin with the email {normalize_email(email)!r}")

    async def delete_admin(self, email: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(admins).where(admins.c.email == normalize_email(email))
            )
        if result.rowcount == 0:
            raise NotFound(f"there is no admin with the email {normalize_email(email)!r}")

    # -- the audit log ----------------------------------------------------------------------

    @staticmethod
    async def _audit(
        conn: AsyncConnection,
        actor: str,
        credential_id: int,
        credential_name: str,
        changes: Sequence[Change],
    ) -> None:
        at = now()
        for change in changes:
            await conn.execute(
                insert(audit_log).values(
                    at=at,
                    actor=actor[:255],
                    credential_id=credential_id,
                    credential_name=credential_name,
                    setting=change.setting[:255],
                    old_value=change.old_value,
                    new_value=change.new_value,
                )
            )

    async def record_changes(
        self, actor: str, credential_id: int, credential_name: str, changes: Sequence[Change]
    ) -> None:
        """Add changes made elsewhere (plugins, platforms, API keys) to the audit log."""
        if not changes:
            return
        async with self.engine.begin() as conn:
            await self._audit(conn, actor, credential_id, credential_name, changes)

    async def change_options(
        self, credential_id: int, changes: Mapping[str, Any], actor: str
    ) -> tuple[CredentialOptions, list[Change]]:
        """Apply option changes and log them in the audit log, in one transaction.

        The changes are applied to the options as stored at this moment (read under a
        row lock where the database has them), so two admins changing different options
        at once both keep their change. Raises :class:`~ltipro.options.OptionError` like
        :meth:`CredentialOptions.updated`, storing nothing. Returns the new options and
        the changes that were real (an option set to its current value is no change).
        """
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(credentials.c.name, credentials.c.options)
                    .where(credentials.c.id == credential_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound(f"there is no credential with id {credential_id}")
            before = CredentialOptions.from_json(row.options)
            after = before.updated(changes)
            old, new = before.to_json(), after.to_json()
            real = [
                Change(key, option_value_text(old[key]), option_value_text(new[key]))
                for key in changes
                if old[key] != new[key]
            ]
            if real:
                await conn.execute(
                    update(credentials).where(credentials.c.id == credential_id).values(options=new)
                )
                await self._audit(conn, actor, credential_id, row.name, real)
        return after, real

    async def audit_entries(self, credential_id: int, limit: int = 200) -> list[AuditEntry]:
        """A credential's audit log, newest first."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_log)
                    .where(audit_log.c.credential_id == credential_id)
                    .order_by(audit_log.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [
            AuditEntry(
                id=r.id,
                at=stored_utc(r.at) or now(),
                actor=r.actor,
                credential_id=r.credential_id,
                credential_name=r.credential_name,
                setting=r.setting,
                old_value=r.old_value,
                new_value=r.new_value,
            )
            for r in rows
        ]

    # -- the launch log ---------------------------------------------------------------------

    async def credential_launches(
        self,
        credential_id: int,
        registrations: Iterable[tuple[str, str]],
        limit: int = 100,
    ) -> list[Any]:
        """A credential's recent launches, newest first, refusals included.

        Besides the launches recorded against the credential, this includes refusals
        recorded before the credential was known (a login with a disabled deployment,
        say) that name one of its registrations by issuer and client id: that pair is
        one registration, so the entry is this credential's. An issuer alone is not
        enough, since several credentials may share an LMS's issuer.
        """
        pairs = [
            and_(launch_log.c.issuer == issuer, launch_log.c.client_id == client_id)
            for issuer, client_id in registrations
        ]
        condition = launch_log.c.credential_id == credential_id
        if pairs:
            condition = or_(condition, and_(launch_log.c.credential_id.is_(None), or_(*pairs)))
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(launch_log)
                        .where(condition)
                        .order_by(launch_log.c.id.desc())
                        .limit(limit)
                    )
                ).all()
            )

    # -- launches no credential could be found for ----------------------------------------

    async def unattributed_launches(self, limit: int = 50) -> list[Any]:
        """Refused launches that named no known credential (an unknown issuer, a wrong key).

        Only a superuser sees these: they may come from any LMS, for any credential.
        """
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(launch_log)
                        .where(launch_log.c.credential_id.is_(None))
                        .order_by(launch_log.c.id.desc())
                        .limit(limit)
                    )
                ).all()
            )

    async def credential_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(credentials.c.id, credentials.c.name).where(credentials.c.id.in_(wanted))
                )
            ).all()
        return {r.id: r.name for r in rows}


__all__ = [
    "SECRET_CHANGED",
    "SECRET_REMOVED",
    "Admin",
    "AdminRepository",
    "AuditEntry",
    "Change",
    "normalize_email",
    "option_value_text",
]
