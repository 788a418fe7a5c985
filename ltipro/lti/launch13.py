"""LTI 1.3 step 2: validating the ``id_token`` the platform posts to ``/lti/launch``.

pylti1p3 is synchronous and fetches keys with ``requests``, so the core does everything
that waits (state, nonce, registration and key look-ups) asynchronously first, then
hands pylti1p3 a registration with the key already parsed and lets it check the token's
format, signature, deployment and message. The checks LTI requires beyond pylti1p3 are
made here, each refusing with its own reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract

from ltipro.context import LaunchMessage
from ltipro.lti.errors import LaunchError
from ltipro.lti.login import STATE_KIND, check_own_url, origin_of, state_cookie_name
from ltipro.storage.repository import Credential, Platform
from ltipro.tool import Tool

NONCE_KIND = "nonce13"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
VERSION = "https://purl.imsglobal.org/spec/lti/claim/version"
DEPLOYMENT_ID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
TARGET_LINK_URI = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
RESOURCE_LINK = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

SUPPORTED_MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")


@dataclass(frozen=True)
class StateCheck:
    """The client-side storage check a browser must pass before the launch goes on."""

    state: str
    id_token: str
    platform_origin: str
    storage_target: str


class NeedsStorageCheck(Exception):
    """The state cookie did not come back; ask the platform's postMessage storage."""

    def __init__(self, check: StateCheck) -> None:
        self.check = check


@dataclass(frozen=True)
class Launch13:
    """A fully validated LTI 1.3 launch."""

    message: LaunchMessage
    platform: Platform
    claims: Mapping[str, Any]
    # The platform's credential, read once here for the whole launch.
    credential: Credential


class _ToolConf(ToolConfAbstract):
    """pylti1p3's view of one registration the core has already loaded."""

    def __init__(self, registration: Registration, deployment_ids: list[str]) -> None:
        super().__init__()
        self._registration = registration
        self._deployments = deployment_ids

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        return self._registration

    def find_registration_by_params(
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Registration:
        return self._registration

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, "")

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        if deployment_id in self._deployments:
            return Deployment().set_deployment_id(deployment_id)
        return None


class _MessageLaunch(MessageLaunch):
    """pylti1p3's launch with state, nonce and key handling left to the core."""

    def __init__(
        self, form: Mapping[str, str], conf: _ToolConf, key: Any, alg: str, leeway: int, **kw: Any
    ) -> None:
        super().__init__(form, conf, session_service=object(), cookie_service=object(), **kw)
        # Each step is called explicitly, in the core's order; reading a claim must not
        # set off pylti1p3's whole chain (with its own state and nonce handling).
        self.set_auto_validation(enable=False)
        self._form = form
        self._key = key
        self._alg = alg
        self._leeway = leeway

    def _get_request_param(self, key: str) -> str:
        return self._form.get(key, "")

    def validate_state(self) -> _MessageLaunch:
        return self  # checked by the core against its shared store

    def validate_nonce(self) -> _MessageLaunch:
        return self  # consumed by the core in its shared store

    def save_launch_data(self) -> _MessageLaunch:
        return self  # the core keeps its own session

    def get_client_id(self) -> str:
        # pylti1p3 takes the first audience; the core has already checked that ours is
        # among them (and that azp names us when there are several).
        return str(self._tool_config.find_registration_by_issuer("").get_client_id())

    def validate_message(self) -> _MessageLaunch:
        # LTI 1.3 allows anonymous launches (no ``sub``); pylti1p3's validators do not.
        body = self._jwt.get("body", {})
        if not body.get("sub"):
            self._jwt["body"] = {**body, "sub": "anonymous"}
        try:
            super().validate_message()
        finally:
            self._jwt["body"] = body
        return self

    def validate_jwt_signature(self) -> _MessageLaunch:
        try:
            jwt.decode(
                self._get_id_token(),
                self._key,
                algorithms=["RS256"],
                leeway=self._leeway,
                options={"verify_aud": False, "require": ["exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LaunchError(
                "expired_token",
                "The launch has expired. Start it again from your LMS.",
                hint="If this keeps happening, check the LMS server's clock.",
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise LaunchError(
                "token_from_future",
                "The launch is dated in the future.",
                hint="The LMS server's clock is ahead of the tool's.",
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise LaunchError(
                "bad_signature", "The launch's signature is not valid.", status=401
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise LaunchError("bad_token", f"The launch token is not valid: {exc}") from exc
        return self


def _unverified(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    # Header and body in one parse: PyJWT checks every character of every segment in
    # Python, so each parse of a launch token costs about as much as its signature check.
    try:
        decoded = jwt.decode_complete(id_token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise LaunchError("bad_token", "The launch token cannot be read.") from exc
    header, body = decoded.get("header"), decoded.get("payload")
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise LaunchError("bad_token", "The launch token cannot be read.")
    return header, body


def unknown_state(tool: Tool) -> LaunchError:
    """The refusal of a state the store does not hold (expired, used, or never made)."""
    return LaunchError(
        "unknown_state",
        "This launch has expired or was already used. Start it again from your LMS.",
        hint=(
            "The login and the launch reached the tool more than "
            f"{tool.settings.state_lifetime // 60} minutes apart, or the launch was "
            "replayed, or the LMS sent it to another tool installation."
        ),
    )


async def take_state(
    tool: Tool, state: str, cookies: Mapping[str, str], proof: str | None, id_token: str
) -> tuple[dict[str, Any], Platform]:
    """The login's state record, consumed unless the browser has yet to show it owns it,
    and the platform it names.

    The state is spent by a launch from its own browser (whatever the outcome: a refused
    launch is started again) and by one from another browser (which must not try again);
    it stays while the browser is asked for its postMessage storage, or when it kept no
    cookie (the page then offers a new login). One store call decides and consumes, and
    the platform is read in the same transaction where the store is in the database.
    """
    platforms: list[Platform] = []

    async def read_platform(raw: str) -> None:
        platforms.append(await tool.repo.platform(int(json.loads(raw)["platform_id"])))

    def spend(raw: str) -> bool:
        try:
            check_browser_binding(json.loads(raw), state, cookies, proof, id_token, "")
        except NeedsStorageCheck:
            return False
        except LaunchError as error:
            return error.code == "state_mismatch"
        return True

    raw = await tool.store.take_if(STATE_KIND, state, spend, then=read_platform)
    if raw is None:
        raise unknown_state(tool)
    record: dict[str, Any] = json.loads(raw)
    return record, platforms[0]


def check_browser_binding(
    record: Mapping[str, Any],
    state: str,
    cookies: Mapping[str, str],
    proof: str | None,
    id_token: str,
    platform_origin: str,
) -> None:
    """The browser posting the launch must be the one that started the login.

    It shows this with the state cookie or, where third-party cookies are blocked, with
    the secret it stored in the platform's postMessage storage at login.
    """
    secret = str(record["secret"])
    if cookies.get(state_cookie_name(state)) == secret:
        return
    if proof is not None:
        if proof == secret:
            return
        raise LaunchError(
            "state_mismatch",
            "This launch was started in another browser. Start it again from your LMS.",
            status=403,
        )
    if record.get("storage"):
        raise NeedsStorageCheck(
            StateCheck(
                state=state,
                id_token=id_token,
                platform_origin=platform_origin,
                storage_target=str(record.get("storage_target") or "_parent"),
            )
        )
    raise LaunchError(
        "state_not_bound",
        "Your browser did not keep the tool's cookie inside the LMS page, so the launch "
        "cannot be confirmed.",
        status=403,
        hint="Open the tool in a new window, or allow cookies for this site.",
        relaunch=dict(record.get("relaunch") or {}),
    )


async def validate_launch13(
    tool: Tool, form: Mapping[str, str], cookies: Mapping[str, str]
) -> Launch13:
    """Validate an LTI 1.3 launch post, or raise :class:`LaunchError`."""
    id_token = form.get("id_token") or ""
    state = form.get("state") or ""
    if not id_token or not state:
        raise LaunchError(
            "bad_launch_request",
            "The launch lacks its id_token or state.",
            hint="The LMS must post id_token and state to the tool's launch URL.",
        )
    proof = form.get("lti_storage_proof")
    record, platform = await take_state(tool, state, cookies, proof, id_token)
    # Refuses (or asks for the storage check) exactly as ``take_state`` decided.
    check_browser_binding(
        record, state, cookies, proof, id_token, origin_of(platform.auth_login_url)
    )

    header, body = _unverified(id_token)
    if header.get("alg") != "RS256":
        raise LaunchError(
            "bad_algorithm",
            f"The launch is signed with {header.get('alg')!r}; LTI 1.3 requires RS256.",
            status=401,
        )
    if body.get("iss") != platform.issuer:
        raise LaunchError(
            "wrong_issuer",
            "The launch does not come from the LMS that started the login.",
            status=401,
            hint=f"Expected issuer {platform.issuer!r}, got {body.get('iss')!r}.",
        )
    audiences = body.get("aud")
    audience_list = audiences if isinstance(audiences, list) else [audiences]
    if platform.client_id not in audience_list:
        raise LaunchError(
            "wrong_audience",
            "The launch is meant for another tool.",
            status=401,
            hint=f"The token's aud does not contain the client id {platform.client_id!r}.",
        )
    if len(audience_list) > 1 and body.get("azp") != platform.client_id:
        raise LaunchError(
            "wrong_azp",
            "The launch names several tools and does not say it is for this one.",
            status=401,
            hint="With several audiences, azp must equal the tool's client id.",
        )

    key, alg = await tool.platform_keys.key(platform.jwks_url, header.get("kid"))
    enabled = [d for d, on in platform.deployments if on]
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_key_set_url(platform.jwks_url)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
    )
    launch = _MessageLaunch(
        form,
        _ToolConf(registration, [d for d, _ in platform.deployments]),
        key,
        alg,
        tool.settings.clock_leeway,
        requests_session=tool.requests_session,
    )
    try:
        launch.validate_jwt_format()
        launch.validate_registration()
        launch.validate_jwt_signature()
    except LtiException as exc:
        raise LaunchError("bad_token", f"The launch token is not valid: {exc}") from exc

    deployment_id = body.get(DEPLOYMENT_ID)
    known = platform.deployment_enabled(str(deployment_id)) if deployment_id else None
    if known is None:
        raise LaunchError(
            "unknown_deployment",
            "This LMS deployment is not registered with the tool.",
            status=403,
            hint=f"Add deployment {deployment_id!r} to the registration of {platform.issuer}.",
        )
    if not known or str(deployment_id) not in enabled:
        raise LaunchError(
            "deployment_disabled",
            "The tool's administrator has turned off launches from this LMS deployment.",
            status=403,
        )
    if record.get("deployment_id") and record["deployment_id"] != deployment_id:
        raise LaunchError(
            "deployment_mismatch",
            "The launch names another deployment than its login did.",
            status=401,
        )
    if body.get(VERSION) != "1.3.0":
        raise LaunchError(
            "unsupported_version",
            f"The launch says it is LTI version {body.get(VERSION)!r}; the tool speaks 1.3.0.",
        )
    message_type = body.get(MESSAGE_TYPE)
    if message_type not in SUPPORTED_MESSAGES:
        raise LaunchError(
            "unsupported_message",
            f"The tool does not handle {message_type!r} messages.",
            hint="The tool handles resource-link launches and deep linking.",
        )
    try:
        launch.validate_deployment()
        launch.validate_message()
    except LtiException as exc:
        raise LaunchError("bad_message", f"The launch is missing required claims: {exc}") from exc
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # pylti1p3's validators assume every claim has its specified JSON type.
        raise LaunchError(
            "bad_message",
            "The launch carries a claim in a form LTI does not allow.",
            hint=f"Validating the id_token's claims failed: {type(exc).__name__}: {exc}",
        ) from exc
    if message_type == "LtiResourceLinkRequest":
        link = body.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise LaunchError("bad_message", "The launch lacks its resource link id.")
    else:
        settings = body.get(DEEP_LINKING_SETTINGS)
        if not isinstance(settings, dict) or not settings.get("deep_link_return_url"):
            raise LaunchError("bad_message", "The deep-linking request lacks its return URL.")
    target = body.get(TARGET_LINK_URI)
    if target is not None:
        check_own_url(tool, str(target), "an address")
    nonce = body.get("nonce")
    if not nonce or nonce != record.get("nonce"):
        raise LaunchError(
            "bad_nonce",
            "The launch does not answer the tool's login request.",
            status=401,
            hint="The id_token's nonce differs from the one the tool sent.",
        )
    if not await tool.store.add_once(
        NONCE_KIND, f"{platform.id}:{nonce}", tool.settings.nonce_lifetime
    ):
        raise LaunchError(
            "replayed_nonce",
            "This launch was already used. Start it again from your LMS.",
            status=401,
        )
    credential = platform.credential or await tool.repo.credential_by_id(platform.credential_id)
    message = LaunchMessage(
        version="1.3",
        claims=body,
        credential=credential.name,
        configured_lms=platform.lms,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_id=str(deployment_id),
    )
    return Launch13(message=message, platform=platform, claims=body, credential=credential)
