"""The meetings-provider interface: what the tool asks of Zoom, Jitsi or any other.

Providers are pluggable like LMS plugins: a plugin answers the ``meetings_providers``
hook with :class:`ProviderSpec` objects. A provider says which :class:`Feature` it has,
and the pages hide or explain what it lacks. Plain data and an abstract class only; no
web framework or database here.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx

from ltipro.extension import SettingSpec
from ltipro.options import CredentialOptions


class Feature(StrEnum):
    """What a provider can do beyond holding meetings with join links."""

    START_URL = "start_url"  # a host-only link that starts the meeting as host
    RECORDINGS = "recordings"  # cloud recordings with play and download links
    ATTENDANCE = "attendance"  # participant reports of past meetings
    ALTERNATIVE_HOSTS = "alternative_hosts"
    AUTO_LOGIN = "auto_login"  # join links that sign the user in
    PROVISIONING = "provisioning"  # creating accounts for users who have none
    USER_TYPES = "user_types"  # upgrading users to licensed accounts
    TRACKING_FIELDS = "tracking_fields"
    GROUPS = "groups"
    RECURRENCE = "recurrence"  # recurring meetings with occurrences held by the provider


FEATURE_HELP: dict[Feature, str] = {
    Feature.START_URL: "a host link that starts the meeting",
    Feature.RECORDINGS: "cloud recordings",
    Feature.ATTENDANCE: "attendance reports",
    Feature.ALTERNATIVE_HOSTS: "alternative hosts",
    Feature.AUTO_LOGIN: "join links that sign people in",
    Feature.PROVISIONING: "creating accounts for new users",
    Feature.USER_TYPES: "upgrading users to licensed accounts",
    Feature.TRACKING_FIELDS: "tracking fields",
    Feature.GROUPS: "group assignment",
    Feature.RECURRENCE: "recurring meetings",
}


class ProviderError(Exception):
    """The provider refused or failed; ``message`` is for the user, ``code`` is stable."""

    def __init__(
        self, code: str, message: str, *, status: int = 502, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class UserOutsideAccount(ProviderError):
    """The user's email belongs to a user of another account of the provider.

    Nothing the tool does can add them: they must sign in with the account the tool uses
    (the credential's sign-in URL) or have the other account release them. The pages show
    it with the credential's own launch error message.
    """

    def __init__(self, email: str) -> None:
        super().__init__(
            "user_outside_account",
            f"The meetings account of {email} belongs to another organisation's account, "
            "not the one this tool uses, so the tool cannot schedule meetings for it.",
            status=403,
        )
        self.email = email


class NotSupported(ProviderError):
    """The provider does not have this feature."""

    def __init__(self, feature: Feature) -> None:
        super().__init__(
            "not_supported",
            f"This meetings service does not offer {FEATURE_HELP[feature]}.",
            status=409,
        )
        self.feature = feature


@dataclass(frozen=True)
class Person:
    """Someone using the tool, as the provider needs to know them."""

    email: str | None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    user_id: str | None = None  # the LMS's id, stable for the person


@dataclass(frozen=True)
class HostAccount:
    """The provider account a host holds meetings with.

    ``licensed`` says whether the account may be an alternative host of others' meetings
    (Zoom allows only licensed users of the same account); ``sso`` whether the user
    signs in with single sign-on.
    """

    id: str
    email: str
    user_type: int | None = None
    licensed: bool = False
    sso: bool = False
    pending: bool = False


@dataclass(frozen=True)
class Recurrence:
    """How a meeting repeats: ``type`` is daily, weekly or monthly."""

    type: str
    repeat_interval: int = 1
    weekly_days: tuple[int, ...] = ()  # 1 = Sunday ... 7 = Saturday, as Zoom counts
    monthly_day: int | None = None
    end_times: int | None = None
    end_date_time: datetime | None = None


@dataclass(frozen=True)
class MeetingSpec:
    """What an instructor asks for when scheduling or editing a meeting."""

    topic: str
    start_time: datetime  # aware
    duration: int  # minutes
    timezone: str
    agenda: str = ""
    recurrence: Recurrence | None = None
    # None leaves what the provider holds alone; a tuple (even empty) sets it.
    alternative_hosts: tuple[str, ...] | None = None
    tracking_fields: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Occurrence:
    id: str
    start_time: datetime
    duration: int


@dataclass(frozen=True)
class ProviderMeeting:
    """A meeting as the provider holds it."""

    id: str
    join_url: str
    topic: str
    start_time: datetime | None
    duration: int
    timezone: str
    host_id: str | None = None
    occurrences: tuple[Occurrence, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    host_email: str | None = None
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class RecordingFile:
    id: str
    file_type: str
    play_url: str | None
    download_url: str | None
    size: int | None = None


@dataclass(frozen=True)
class Recording:
    """One recorded session of a meeting (a recurring meeting has one per occurrence)."""

    id: str
    meeting_id: str
    topic: str
    start_time: datetime | None
    duration: int
    files: tuple[RecordingFile, ...] = ()
    share_url: str | None = None


@dataclass(frozen=True)
class HeldInstance:
    """One held session of a meeting (a recurring meeting has one per occurrence held)."""

    id: str
    start_time: datetime | None


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str | None
    join_time: datetime | None
    leave_time: datetime | None
    duration: int  # seconds


class MeetingsProvider(abc.ABC):
    """One configured provider account. Every call is async and may raise ProviderError."""

    name: str = ""
    title: str = ""
    features: frozenset[Feature] = frozenset()

    def has(self, feature: Feature) -> bool:
        return feature in self.features

    def missing_features(self) -> list[str]:
        """What this provider lacks, in words, for the pages to say plainly."""
        return [FEATURE_HELP[f] for f in Feature if f not in self.features]

    @abc.abstractmethod
    async def host_account(
        self,
        person: Person,
        *,
        role: str | None = None,
        options: CredentialOptions | None = None,
    ) -> HostAccount:
        """The account ``person`` hosts with: found, or provisioned where ``options``
        provision users of ``role`` (``instructor`` or ``student``)."""

    async def prepare_user(
        self,
        person: Person,
        role: str,
        options: CredentialOptions,
        attributes: Mapping[str, str],
    ) -> HostAccount | None:
        """Run at each launch: provision, upgrade and group the user as ``options`` say.

        Returns the user's account when they have one. Raises :class:`UserOutsideAccount`
        when the user's email is held by another account. Providers without accounts
        have nothing to do.
        """
        return None

    @abc.abstractmethod
    async def create_meeting(self, host: HostAccount, spec: MeetingSpec) -> ProviderMeeting: ...

    @abc.abstractmethod
    async def update_meeting(self, meeting_id: str, spec: MeetingSpec) -> None: ...

    @abc.abstractmethod
    async def delete_meeting(self, meeting_id: str) -> None:
        """Delete it; a meeting already gone counts as deleted."""

    @abc.abstractmethod
    async def join_url(
        self,
        meeting_id: str,
        stored_join_url: str,
        person: Person,
        *,
        host: bool,
        options: CredentialOptions | None = None,
    ) -> str:
        """The link ``person`` follows to join (as a moderator when ``host``); with
        ``options`` allowing it, a link that signs them in."""

    async def start_url(self, meeting_id: str, host: HostAccount) -> str:
        """The host-only link that starts the meeting; fetched when the host clicks."""
        raise NotSupported(Feature.START_URL)

    async def get_meeting(self, meeting_id: str) -> ProviderMeeting:
        """A meeting the provider account already holds, as an import finds it.

        Raises :class:`ProviderError` with code ``invalid_meeting_id`` (404) for an ID of
        a form the provider never gives, ``meeting_not_found`` (404) when there is no such
        meeting, and ``meeting_outside_account`` (403) when it exists but is not the
        account's (its host is a user of another account), so it cannot be imported.
        """
        raise ProviderError(
            "import_not_supported",
            f"{self.title or self.name} cannot look up existing meetings, so none can be imported.",
            status=409,
        )

    async def set_alternative_hosts(self, meeting_id: str, hosts: Sequence[str]) -> None:
        """Make exactly ``hosts`` (emails) the meeting's alternative hosts."""
        raise NotSupported(Feature.ALTERNATIVE_HOSTS)

    async def recordings(self, meeting_id: str) -> list[Recording]:
        """Every cloud recording of the meeting, one per held session."""
        raise NotSupported(Feature.RECORDINGS)

    async def delete_recording(self, meeting_id: str, recording_id: str) -> None:
        """Delete one held session's recording (a recording already gone counts)."""
        raise NotSupported(Feature.RECORDINGS)

    async def held_instances(self, meeting_id: str) -> list[HeldInstance]:
        """The sessions of the meeting that were held, oldest first."""
        raise NotSupported(Feature.ATTENDANCE)

    async def attendance(self, meeting_id: str) -> list[Attendee]:
        """Who attended a held session (an instance id from :meth:`held_instances`)."""
        raise NotSupported(Feature.ATTENDANCE)

    async def close(self) -> None:
        return None


ProviderFactory = Callable[[Mapping[str, Any], httpx.AsyncClient], MeetingsProvider]


@dataclass(frozen=True)
class ProviderSpec:
    """A meetings provider a plugin offers: its settings and how to make one."""

    name: str
    title: str
    settings: Sequence[SettingSpec]
    factory: ProviderFactory
    features: frozenset[Feature] = frozenset()
    description: str = ""
