"""The Zoom meetings provider: the tool's provider interface over :class:`ZoomClient`.

One instance serves one credential's Zoom account (a Server-to-Server OAuth app). What
each configuration option makes it do, call by call, is in ``docs/options.md``:

* users are looked up by email; a user with none is provisioned where the options say
  (``autoCreate`` for an email in one of the account's verified associated domains, so no
  activation email is sent; ``create`` otherwise), Basic users are upgraded where the
  options say, and instructors join groups by attribute match;
* an email held by another Zoom account (code 1009) is :class:`UserOutsideAccount`;
* join links carry the user's own ZAK (``zak=``) when auto login is on, or lead through
  the account's vanity URL for single sign-on users when sign-in through the LMS's
  identity provider is on; the host's ``start_url`` is fetched only when the host starts.

Zoom's errors become :class:`ProviderError` with a message for the person using the
tool (the per-host daily limit says when it resets).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from ltipro.extension import SettingSpec
from ltipro.meetings.rules import (
    LICENSED,
    ON_PREM,
    email_domain,
    matching_groups,
    provision_type,
    should_provision,
    should_upgrade,
    upgrade_type,
)
from ltipro.options import CredentialOptions
from ltipro.providers.base import (
    Attendee,
    Feature,
    HeldInstance,
    HostAccount,
    MeetingSpec,
    MeetingsProvider,
    Occurrence,
    Person,
    ProviderError,
    ProviderMeeting,
    ProviderSpec,
    Recording,
    RecordingFile,
    Recurrence,
    UserOutsideAccount,
)
from ltipro.providers.zoom.client import (
    ZOOM_API_BASE_URL,
    ZOOM_OAUTH_TOKEN_URL,
    ZoomClient,
    ZoomSettings,
)
from ltipro.providers.zoom.errors import (
    ZoomAuthError,
    ZoomDailyLimit,
    ZoomError,
    ZoomGroupNotFound,
    ZoomInvalidRequest,
    ZoomMeetingNotFound,
    ZoomNotFound,
    ZoomPermissionDenied,
    ZoomRateLimited,
    ZoomRecordingNotFound,
    ZoomUnavailable,
    ZoomUserExists,
    ZoomUserInAnotherAccount,
)
from ltipro.providers.zoom.models import (
    CreateAction,
    MeetingType,
    RecurrenceType,
    UserType,
    ZoomMeeting,
    ZoomMeetingFields,
    ZoomRecording,
    ZoomRecurrence,
    ZoomUser,
)

log = logging.getLogger(__name__)

NAME = "zoom"
SETTINGS_PLUGIN = "providers"
SSO_LOGIN_TYPE = 101  # ``login_types`` of a user who signs in with single sign-on
DOMAINS_LIFETIME = 600.0  # seconds the account's associated domains are remembered
RECURRENCE_TYPES = {
    "daily": RecurrenceType.DAILY,
    "weekly": RecurrenceType.WEEKLY,
    "monthly": RecurrenceType.MONTHLY,
}


def _https_url(raw: str) -> str:
    text = (raw or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{raw!r} is not an https:// address")
    return text


def _vanity_url(raw: str) -> str:
    text = (raw or "").strip().rstrip("/")
    return _https_url(text) if text else ""


@contextlib.contextmanager
def zoom_errors() -> Iterator[None]:
    """Turn Zoom's errors into :class:`ProviderError` with a message for the user."""
    try:
        yield
    except ZoomDailyLimit as exc:
        when = exc.resets_at.strftime("%H:%M UTC") if exc.resets_at else "00:00 UTC"
        raise ProviderError(
            "daily_limit",
            "Zoom lets each host create or change a limited number of meetings a day, and "
            f"that limit is reached for today. Try again after {when}.",
            status=429,
            retry_after=exc.retry_after,
        ) from exc
    except ZoomRateLimited as exc:
        wait = f" in {int(exc.retry_after) + 1} seconds" if exc.retry_after else " shortly"
        raise ProviderError(
            "rate_limited", f"Zoom is busy. Please try again{wait}.", status=429
        ) from exc
    except ZoomUserInAnotherAccount as exc:
        raise UserOutsideAccount("your email address") from exc
    except ZoomMeetingNotFound as exc:
        raise ProviderError(
            "meeting_not_found", "Zoom no longer has this meeting.", status=404
        ) from exc
    except ZoomAuthError as exc:
        raise ProviderError(
            "provider_auth",
            "Zoom refused the tool's credentials. An administrator must check the Zoom "
            "account id, client id and client secret of this tool.",
            status=502,
        ) from exc
    except ZoomPermissionDenied as exc:
        raise ProviderError(
            "provider_permission",
            f"Zoom does not allow this for the tool's account: {exc.message}",
            status=409,
        ) from exc
    except ZoomUnavailable as exc:
        raise ProviderError(
            "provider_unavailable",
            "Zoom is not answering right now. Please try again in a minute.",
            status=503,
        ) from exc
    except ZoomInvalidRequest as exc:
        raise ProviderError("provider_refused", f"Zoom refused: {exc.message}", status=422) from exc
    except ZoomError as exc:
        raise ProviderError("provider_error", f"Zoom answered: {exc.message}", status=502) from exc


def _host(user: ZoomUser) -> HostAccount:
    login_types = user.raw.get("login_types")
    return HostAccount(
        id=user.id,
        email=user.email,
        user_type=user.type,
        licensed=user.type in (LICENSED, ON_PREM),
        sso=isinstance(login_types, list) and SSO_LOGIN_TYPE in login_types,
        pending=user.pending,
    )


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _fields(spec: MeetingSpec) -> ZoomMeetingFields:
    recurrence = spec.recurrence
    return ZoomMeetingFields(
        topic=spec.topic,
        start_time=spec.start_time,
        duration=spec.duration,
        timezone=spec.timezone,
        agenda=spec.agenda,
        type=MeetingType.RECURRING_FIXED_TIME if recurrence else MeetingType.SCHEDULED,
        recurrence=_recurrence(recurrence) if recurrence else None,
        alternative_hosts=spec.alternative_hosts,
        tracking_fields=spec.tracking_fields,
    )


def _recurrence(recurrence: Recurrence) -> ZoomRecurrence:
    return ZoomRecurrence(
        type=RECURRENCE_TYPES[recurrence.type],
        repeat_interval=recurrence.repeat_interval,
        weekly_days=recurrence.weekly_days,
        monthly_day=recurrence.monthly_day,
        end_times=recurrence.end_times if recurrence.end_date_time is None else None,
        end_date_time=recurrence.end_date_time,
    )


def _from_zoom_recurrence(recurrence: ZoomRecurrence | None) -> Recurrence | None:
    if recurrence is None:
        return None
    kinds = {int(v): k for k, v in RECURRENCE_TYPES.items()}
    kind = kinds.get(int(recurrence.type))
    if kind is None:
        return None
    return Recurrence(
        type=kind,
        repeat_interval=recurrence.repeat_interval,
        weekly_days=recurrence.weekly_days,
        monthly_day=recurrence.monthly_day,
        end_times=recurrence.end_times,
        end_date_time=recurrence.end_date_time,
    )


def _meeting(meeting: ZoomMeeting, spec: MeetingSpec) -> ProviderMeeting:
    return ProviderMeeting(
        id=str(meeting.id),
        join_url=meeting.join_url or "",
        topic=meeting.topic or spec.topic,
        start_time=meeting.start_time or spec.start_time,
        duration=meeting.duration or spec.duration,
        timezone=meeting.timezone or spec.timezone,
        host_id=meeting.host_id,
        occurrences=tuple(
            Occurrence(o.occurrence_id, o.start_time, o.duration or spec.duration)
            for o in meeting.occurrences
            if o.start_time is not None
        ),
    )


def _recording(recording: ZoomRecording) -> Recording:
    return Recording(
        id=recording.uuid,
        meeting_id=str(recording.meeting_id),
        topic=recording.topic,
        start_time=recording.start_time,
        duration=recording.duration or 0,
        files=tuple(
            RecordingFile(
                id=f.id,
                file_type=f.file_type or "",
                play_url=f.play_url,
                download_url=f.download_url,
                size=f.file_size,
            )
            for f in recording.files
        ),
        share_url=recording.share_url,
    )


def _number(meeting_id: str) -> int:
    if not meeting_id.isdigit():
        raise ProviderError("meeting_not_found", "Zoom no longer has this meeting.", status=404)
    return int(meeting_id)


class ZoomProvider(MeetingsProvider):
    """Meetings on one Zoom account, through its Server-to-Server OAuth app."""

    name = NAME
    title = "Zoom"
    features = frozenset(Feature)

    def __init__(
        self,
        settings: ZoomSettings,
        http: httpx.AsyncClient,
        *,
        webhook_secret_token: str = "",
        vanity_url: str = "",
        clock: Any = time.monotonic,
    ) -> None:
        self.client = ZoomClient(settings, http)
        self.webhook_secret_token = webhook_secret_token
        self.vanity_url = vanity_url
        self._clock = clock
        self._domains: tuple[float, frozenset[str]] | None = None
        self._account_users: dict[str, tuple[float, str]] = {}
        # Set once Zoom says the account cannot use the retired type 3.
        self.on_prem_refused = False

    # -- users ------------------------------------------------------------------------------

    async def _user(self, email: str) -> ZoomUser | None:
        with zoom_errors():
            return await self.client.find_user(email)

    async def associated_domains(self) -> frozenset[str]:
        """The account's verified associated domains (remembered for ten minutes)."""
        now = self._clock()
        if self._domains is not None and now - self._domains[0] < DOMAINS_LIFETIME:
            return self._domains[1]
        try:
            found = await self.client.managed_domains()
        except (ZoomPermissionDenied, ZoomNotFound, ZoomInvalidRequest) as exc:
            # A plan without associated domains: every new user gets the email.
            log.info("Zoom lists no associated domains for this account: %s", exc)
            found = []
        except ZoomError as exc:
            with zoom_errors():
                raise exc
        domains = frozenset(d for d, status in found if status.lower() == "verified")
        self._domains = (now, domains)
        return domains

    async def _provision(self, person: Person, options: CredentialOptions) -> ZoomUser | None:
        email = person.email or ""
        action = (
            CreateAction.AUTO_CREATE
            if email_domain(email) in await self.associated_domains()
            else CreateAction.CREATE
        )
        user_type = provision_type(options)
        if user_type == ON_PREM and self.on_prem_refused:
            user_type = LICENSED
        for _ in range(3):
            try:
                with zoom_errors():
                    try:
                        return await self.client.create_user(
                            email,
                            action=action,
                            type=UserType(user_type),
                            first_name=person.given_name,
                            last_name=person.family_name,
                        )
                    except ZoomInvalidRequest as exc:
                        if user_type == ON_PREM and "on-prem" in exc.message.lower():
                            self.on_prem_refused = True
                            user_type = LICENSED
                            continue
                        if action == CreateAction.AUTO_CREATE:
                            # The account does not allow autoCreate: the email way works.
                            action = CreateAction.CREATE
                            continue
                        raise
                    except ZoomUserExists:
                        # Added meanwhile (or still pending activation): read it back.
                        return await self.client.find_user(email)
            except UserOutsideAccount:
                raise UserOutsideAccount(email) from None
        return None

    async def _upgrade(self, user: ZoomUser, options: CredentialOptions) -> ZoomUser:
        target = upgrade_type(options)
        if target == ON_PREM and self.on_prem_refused:
            target = LICENSED
        with zoom_errors():
            try:
                await self.client.update_user_type(user.id, UserType(target))
            except ZoomInvalidRequest as exc:
                if target != ON_PREM or "on-prem" not in exc.message.lower():
                    raise
                # Corp (type 3) is retired on this account: Licensed is today's paid type.
                self.on_prem_refused = True
                target = LICENSED
                await self.client.update_user_type(user.id, UserType(target))
        return replace(user, type=target)

    async def host_account(
        self,
        person: Person,
        *,
        role: str | None = None,
        options: CredentialOptions | None = None,
    ) -> HostAccount:
        email = person.email
        if not email:
            raise ProviderError(
                "no_email",
                "The tool needs your email address to find your Zoom account.",
                status=400,
            )
        user = await self._user(email)
        if user is None and options is not None and role and should_provision(options, role, email):
            user = await self._provision(person, options)
        if user is None:
            raise ProviderError(
                "no_account",
                f"{email} has no Zoom account in the account this tool uses. Ask your Zoom "
                "administrator to add you, then try again.",
                status=409,
            )
        if user.pending:
            raise ProviderError(
                "account_pending",
                f"Zoom has sent {email} an email to activate your new Zoom account. Accept "
                "it, then try again.",
                status=409,
            )
        return _host(user)

    async def prepare_user(
        self,
        person: Person,
        role: str,
        options: CredentialOptions,
        attributes: Mapping[str, str],
    ) -> HostAccount | None:
        email = person.email
        if not email:
            return None
        user = await self._user(email)
        if user is None and should_provision(options, role, email):
            user = await self._provision(person, options)
        if user is None:
            return None
        if not user.pending and should_upgrade(options, role, user.type):
            user = await self._upgrade(user, options)
        for group_id in matching_groups(options, role, attributes):
            if group_id in user.group_ids:
                continue
            try:
                with zoom_errors():
                    try:
                        await self.client.add_group_members(group_id, [user.id])
                    except ZoomGroupNotFound:
                        log.warning(
                            "group rule names Zoom group %s, which does not exist", group_id
                        )
            except ProviderError as exc:
                # A group is a convenience: it never stops someone from using the tool.
                log.warning("could not add a user to Zoom group %s: %s", group_id, exc.message)
        return _host(user)

    # -- meetings ---------------------------------------------------------------------------

    async def create_meeting(self, host: HostAccount, spec: MeetingSpec) -> ProviderMeeting:
        with zoom_errors():
            created = await self.client.create_meeting(host.id, _fields(spec))
        return _meeting(created, spec)

    async def update_meeting(self, meeting_id: str, spec: MeetingSpec) -> None:
        with zoom_errors():
            await self.client.update_meeting(_number(meeting_id), _fields(spec))

    async def delete_meeting(self, meeting_id: str) -> None:
        if not meeting_id.isdigit():
            return
        with zoom_errors():
            try:
                await self.client.delete_meeting(int(meeting_id))
            except ZoomMeetingNotFound:
                return

    async def get_meeting(self, meeting_id: str) -> ProviderMeeting:
        """The meeting, if its host is a user of this account (what an import may take).

        With an account-level app Zoom reads any meeting it lets the app see; the host's
        user record tells whether the meeting is the account's own: a user of another
        account answers 1001/1010 (``GET /users/{userId}``).
        """
        if not (meeting_id.isdigit() and 9 <= len(meeting_id) <= 11):
            raise ProviderError(
                "invalid_meeting_id", "a Zoom meeting ID is a number of 9 to 11 digits.", status=404
            )
        with zoom_errors():
            found = await self.client.get_meeting(int(meeting_id))
            if not found.host_id:
                raise ProviderError(
                    "meeting_outside_account",
                    "Zoom names no host of this meeting in the tool's account.",
                    status=403,
                )
            host_email = await self._account_user_email(found.host_id)
        occurrences = tuple(
            Occurrence(o.occurrence_id, o.start_time, o.duration or found.duration or 60)
            for o in found.occurrences
            if o.start_time is not None
        )
        return ProviderMeeting(
            id=str(found.id),
            join_url=found.join_url or "",
            topic=found.topic or "Zoom meeting",
            start_time=found.start_time or (occurrences[0].start_time if occurrences else None),
            duration=found.duration or 60,
            timezone=found.timezone or "UTC",
            host_id=found.host_id,
            occurrences=occurrences,
            host_email=host_email,
            recurrence=_from_zoom_recurrence(found.recurrence) if occurrences else None,
        )

    async def _account_user_email(self, user_id: str) -> str:
        """The email of a user of the account; an import of many meetings of a few hosts
        asks Zoom once per host (answers are remembered for ten minutes)."""
        now = self._clock()
        known = self._account_users.get(user_id)
        if known is not None and now - known[0] < DOMAINS_LIFETIME:
            return known[1]
        try:
            user = await self.client.get_user(user_id)
        except ZoomNotFound:
            raise ProviderError(
                "meeting_outside_account",
                "This meeting belongs to another Zoom account, not the one this tool uses.",
                status=403,
            ) from None
        if len(self._account_users) > 10000:
            self._account_users.clear()
        self._account_users[user_id] = (now, user.email)
        return user.email

    async def set_alternative_hosts(self, meeting_id: str, hosts: Sequence[str]) -> None:
        with zoom_errors():
            await self.client.update_meeting(
                _number(meeting_id), ZoomMeetingFields(alternative_hosts=list(hosts))
            )

    async def join_url(
        self,
        meeting_id: str,
        stored_join_url: str,
        person: Person,
        *,
        host: bool,
        options: CredentialOptions | None = None,
    ) -> str:
        if options is None or not person.email:
            return stored_join_url
        sso = options.auto_login_via_lms_idp and bool(self.vanity_url)
        if not (sso or options.meeting_link_auto_login):
            return stored_join_url
        try:
            user = await self.client.find_user(person.email)
            if user is None or user.pending:
                return stored_join_url  # Zoom signs in only users of the account
            account = _host(user)
            if sso and account.sso:
                vanity = urlsplit(self.vanity_url)
                parts = urlsplit(stored_join_url)
                return urlunsplit(parts._replace(scheme=vanity.scheme, netloc=vanity.netloc))
            if options.meeting_link_auto_login:
                # The user's own ZAK: it signs in this user, and no one else sees it.
                zak = await self.client.zak_token(user.id)
                return _with_query(stored_join_url, zak=zak)
        except ZoomError as exc:
            # Joining must still work when Zoom cannot sign the user in.
            log.warning("could not make a signed-in join link: %s", exc)
        return stored_join_url

    async def start_url(self, meeting_id: str, host: HostAccount) -> str:
        with zoom_errors():
            meeting = await self.client.get_meeting(_number(meeting_id))
        if meeting.host_id and meeting.host_id != host.id:
            raise ProviderError("not_host", "Only the meeting's host can start it.", status=403)
        if not meeting.start_url:
            raise ProviderError("provider_error", "Zoom gave no start link for this meeting.")
        return meeting.start_url

    # -- recordings and reports --------------------------------------------------------------

    async def held_instances(self, meeting_id: str) -> list[HeldInstance]:
        with zoom_errors():
            try:
                found = await self.client.past_instances(_number(meeting_id))
            except ZoomMeetingNotFound:
                return []
        held = [HeldInstance(i.uuid, i.start_time) for i in found if i.uuid]
        return sorted(held, key=lambda i: (i.start_time is None, i.start_time))

    async def recordings(self, meeting_id: str) -> list[Recording]:
        found: list[Recording] = []
        for instance in await self.held_instances(meeting_id):
            with zoom_errors():
                try:
                    recording = await self.client.get_recordings(instance.id)
                except ZoomRecordingNotFound:
                    continue
            found.append(_recording(recording))
        return found

    async def delete_recording(self, meeting_id: str, recording_id: str) -> None:
        with zoom_errors():
            try:
                await self.client.delete_recordings(recording_id)
            except ZoomRecordingNotFound:
                return

    async def attendance(self, meeting_id: str) -> list[Attendee]:
        with zoom_errors():
            return [
                Attendee(
                    name=p.name,
                    email=p.user_email,
                    join_time=p.join_time,
                    leave_time=p.leave_time,
                    duration=p.duration,
                )
                async for p in self.client.list_participants(meeting_id)
            ]


def provider_spec() -> ProviderSpec:
    """How the built-in plugin offers the Zoom provider."""
    settings = [
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.account_id",
            "Zoom account id",
            help="The account id of the Zoom Server-to-Server OAuth app.",
            default="",
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.client_id",
            "Zoom client id",
            help="The client id of the Zoom Server-to-Server OAuth app.",
            default="",
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.client_secret",
            "Zoom client secret",
            help="The client secret of the Zoom Server-to-Server OAuth app.",
            default="",
            secret=True,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.api_base_url",
            "Zoom API address",
            help="https://api.zoom.us/v2, or https://api.zoomgov.com/v2 for Zoom for Government.",
            default=ZOOM_API_BASE_URL,
            validate=_https_url,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.oauth_token_url",
            "Zoom OAuth token address",
            help="https://zoom.us/oauth/token, or https://zoomgov.com/oauth/token for Zoom "
            "for Government.",
            default=ZOOM_OAUTH_TOKEN_URL,
            validate=_https_url,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.webhook_secret_token",
            "Zoom webhook secret token",
            help="The secret token of the app's event subscription; Zoom signs the events "
            "it sends to /webhooks/zoom/<credential> with it.",
            default="",
            secret=True,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.vanity_url",
            "Zoom vanity URL",
            help="The account's own address (https://example-edu.zoom.us), where its "
            "single sign-on users sign in. Needed for sign-in through the LMS's identity "
            "provider.",
            default="",
            validate=_vanity_url,
        ),
    ]

    def factory(values: Mapping[str, Any], http: httpx.AsyncClient) -> MeetingsProvider:
        missing = [
            label
            for key, label in (
                ("account_id", "account id"),
                ("client_id", "client id"),
                ("client_secret", "client secret"),
            )
            if not str(values.get(key) or "").strip()
        ]
        if missing:
            raise ValueError(f"the Zoom {', '.join(missing)} must be set")
        settings = ZoomSettings(
            account_id=str(values["account_id"]).strip(),
            client_id=str(values["client_id"]).strip(),
            client_secret=str(values["client_secret"]),
            api_base_url=_https_url(str(values.get("api_base_url") or ZOOM_API_BASE_URL)),
            oauth_token_url=_https_url(str(values.get("oauth_token_url") or ZOOM_OAUTH_TOKEN_URL)),
        )
        return ZoomProvider(
            settings,
            http,
            webhook_secret_token=str(values.get("webhook_secret_token") or ""),
            vanity_url=_vanity_url(str(values.get("vanity_url") or "")),
        )

    return ProviderSpec(
        name=NAME,
        title="Zoom",
        settings=settings,
        factory=factory,
        features=frozenset(Feature),
        description=(
            "Zoom meetings through a Server-to-Server OAuth app of your Zoom account: "
            "recordings, attendance reports, account provisioning and every option."
        ),
    )
