"""The LTI endpoints: login initiation, launch, the tool's key set, deep-linking response."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ltipro.crypto import private_key_object
from ltipro.launch import LaunchResult, complete_launch
from ltipro.lti.errors import LaunchError
from ltipro.lti.launch11 import is_lti11, validate_launch11
from ltipro.lti.launch13 import NeedsStorageCheck, validate_launch13
from ltipro.lti.login import initiate_login
from ltipro.meetings.service import CourseMeetings, MeetingError
from ltipro.providers.base import ProviderError
from ltipro.sessions import COOKIE_NAME
from ltipro.storage.repository import Credential
from ltipro.tool import TOOL_TOKEN_LIFETIME, Tool
from ltipro.web.meetings import meetings_page
from ltipro.web.security import allow_framing_by
from ltipro.web.session import require_session
from ltipro.web.templating import render

log = logging.getLogger(__name__)


def tool_of(request: Request) -> Tool:
    tool: Tool = request.app.state.tool
    return tool


async def form_of(request: Request) -> dict[str, str]:
    """The posted form as text fields; a file or an unreadable body counts as empty."""
    try:
        form = await request.form()
    except Exception:
        return {}
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """A cookie that survives inside an LMS iframe where the browser allows it at all.

    Written by hand: ``Partitioned`` (CHIPS) is not in the standard library before 3.14.
    The values are URL-safe tokens, so they need no quoting.
    """
    response.headers.append(
        "set-cookie",
        f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
    )


async def _credential_hint(tool: Tool, form: Mapping[str, str]) -> dict[str, Any]:
    """What a refused launch's log entry can say about it, read without trusting it."""
    info: dict[str, Any] = {}
    if is_lti11(form):
        info["lti_version"] = "1.1"
        credential = await tool.repo.credential_by_lti11_key(form.get("oauth_consumer_key", ""))
        info["credential_id"] = credential.id if credential else None
        info["user_id"] = form.get("user_id")
        info["context_id"] = form.get("context_id")
        return info
    info["lti_version"] = "1.3"
    try:
        body = jwt.decode(form.get("id_token", ""), options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return info
    if not isinstance(body, dict):
        return info
    audience = body.get("aud")
    client_id = audience[0] if isinstance(audience, list) and audience else audience
    issuer = body.get("iss")
    info.update(
        issuer=str(issuer) if issuer else None,
        client_id=str(client_id) if client_id else None,
        deployment_id=str(body.get("https://purl.imsglobal.org/spec/lti/claim/deployment_id") or "")
        or None,
        user_id=str(body.get("sub")) if body.get("sub") else None,
    )
    context = body.get("https://purl.imsglobal.org/spec/lti/claim/context")
    if isinstance(context, dict) and context.get("id"):
        info["context_id"] = str(context["id"])
    if isinstance(issuer, str):
        found = await tool.repo.find_platforms(issuer, info["client_id"])
        if len(found) == 1:
            info["credential_id"] = found[0].credential_id
    return info


async def launch_refused(
    request: Request, error: LaunchError, info: Mapping[str, Any] | None = None
) -> Response:
    """Record the refusal in the launch log and show the user a page they can act on."""
    tool = tool_of(request)
    entry = dict(info or {})
    credential: Credential | None = None
    if entry.get("credential_id"):
        try:
            credential = await tool.repo.credential_by_id(int(entry["credential_id"]))
        except LookupError:
            credential = None
    try:
        await tool.repo.log_launch(
            outcome="refused",
            code=error.code,
            message=error.message + (f" ({error.hint})" if error.hint else ""),
            lms=error.lms or entry.get("lms"),
            credential_id=credential.id if credential else None,
            lti_version=entry.get("lti_version"),
            issuer=entry.get("issuer"),
            client_id=entry.get("client_id"),
            deployment_id=entry.get("deployment_id"),
            user_id=entry.get("user_id"),
            context_id=entry.get("context_id"),
        )
    except Exception:  # the refusal itself must reach the user even if logging fails
        log.exception("could not record a refused launch")
    options = credential.options if credential else None
    relaunch_url = (
        tool.settings.url("/lti/login") + "?" + urlencode(error.relaunch)
        if error.relaunch
        else None
    )
    response = render(
        request,
        "lti/error.html",
        {
            "error": error,
            "custom_message": options.launch_error_message if options else "",
            "sign_in_url": options.sign_in_url if options else "",
            "relaunch_url": relaunch_url,
        },
        status_code=error.status,
    )
    allow_framing_by(request, options.approved_domains if options else ())
    return response


async def login(request: Request) -> Response:
    """``GET|POST /lti/login``: OIDC third-party login initiation."""
    tool = tool_of(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await form_of(request))
    try:
        redirect = await initiate_login(tool, params)
    except LaunchError as error:
        return await launch_refused(
            request,
            error,
            {
                "lti_version": "1.3",
                "issuer": params.get("iss"),
                "client_id": params.get("client_id"),
                "deployment_id": params.get("lti_deployment_id"),
            },
        )
    credential = redirect.platform.credential or await tool.repo.credential_by_id(
        redirect.platform.credential_id
    )
    response: Response
    if redirect.storage_target:
        response = render(
            request,
            "lti/login_storage.html",
            {
                "auth_url": redirect.auth_url,
                "storage_key": f"state_{redirect.state}",
                "storage_value": redirect.browser_secret,
                "storage_target": redirect.storage_target,
                "platform_origin": redirect.platform_origin,
            },
        )
    else:
        response = RedirectResponse(redirect.auth_url, status_code=302)
    set_cookie(
        response, redirect.cookie_name, redirect.browser_secret, tool.settings.state_lifetime
    )
    allow_framing_by(request, credential.options.approved_domains)
    return response


async def launch(request: Request) -> Response:
    """``POST /lti/launch``: an LTI 1.3 id_token or an LTI 1.1 signed form."""
    tool = tool_of(request)
    form = await form_of(request)
    platform_id: int | None = None
    try:
        if is_lti11(form):
            message = await validate_launch11(tool, form, request.url.query)
            credential = await tool.repo.credential(message.credential)
        elif "id_token" in form:
            try:
                validated = await validate_launch13(tool, form, request.cookies)
            except NeedsStorageCheck as pending:
                response = render(
                    request,
                    "lti/launch_storage.html",
                    {
                        "check": pending.check,
                        "storage_key": f"state_{pending.check.state}",
                        "launch_url": tool.settings.url("/lti/launch"),
                    },
                )
                allow_framing_by(request, ())
                return response
            message = validated.message
            platform_id = validated.platform.id
            credential = validated.credential
        else:
            raise LaunchError(
                "bad_launch_request",
                "This is not an LTI launch.",
                hint="LTI 1.3 launches post id_token and state; LTI 1.1 launches are OAuth-signed.",
            )
        result = await complete_launch(tool, message, credential, platform_id)
    except LaunchError as error:
        return await launch_refused(request, error, await _credential_hint(tool, form))
    return await launched_page(request, tool, result)


async def launched_page(request: Request, tool: Tool, result: LaunchResult) -> Response:
    """The first page after a launch: the course's meetings, or the deep-linking choice."""
    response: Response | None = None
    notice = ""
    if not result.session.deep_link and result.context.course is not None:
        try:
            # The provider's settings and the course's meetings are read on one connection:
            # nothing but these reads (and the plugins' synchronous answers) runs in between.
            async with tool.repo.reading():
                service = await CourseMeetings.open(
                    tool, result.session, result.credential, result.course_id
                )
                meetings = await service.all()
            response = await meetings_page(request, service, result.token, meetings=meetings)
        except (MeetingError, ProviderError) as exc:
            notice = exc.message
    if response is None:
        template = "lti/deep_link.html" if result.session.deep_link else "course.html"
        response = render(
            request,
            template,
            {
                "session": result.session,
                "token": result.token,
                "context": result.context,
                "identity": result.identity,
                "credential": result.credential,
                "lms_title": tool.plugins.title(result.context.lms),
                "notice": notice,
            },
        )
    set_cookie(response, COOKIE_NAME, result.token, tool.settings.session_lifetime)
    allow_framing_by(request, result.credential.options.approved_domains)
    return response


async def jwks(request: Request) -> Response:
    """``GET /.well-known/jwks.json``: the tool's public keys."""
    return JSONResponse(
        await tool_of(request).jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


async def deep_link_response(request: Request) -> Response:
    """``POST /lti/deep-link``: answer a deep-linking request with the tool's resource link."""
    tool = tool_of(request)
    session = await require_session(request)
    settings = session.deep_link
    if not settings or not settings.get("return_url"):
        raise LaunchError(
            "not_deep_linking", "This session did not start from a deep-linking request."
        )
    if not session.is_instructor:
        raise LaunchError(
            "not_instructor", "Only instructors can add the tool to a course.", status=403
        )
    form = await form_of(request)
    title = (form.get("title") or "Meetings").strip()[:200] or "Meetings"
    key = await tool.signing_key()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings["client_id"],
        "aud": [settings["issuer"]],
        "iat": now,
        "exp": now + TOOL_TOKEN_LIFETIME,
        "nonce": secrets.token_urlsafe(16),
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": settings["deployment_id"],
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingResponse",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": [
            {
                "type": "ltiResourceLink",
                "title": title,
                "url": tool.settings.url("/lti/launch"),
            }
        ],
    }
    if settings.get("data") is not None:
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] = settings["data"]
    token = jwt.encode(
        claims, private_key_object(key.private_key), algorithm="RS256", headers={"kid": key.kid}
    )
    response = render(
        request,
        "lti/deep_link_return.html",
        {"return_url": settings["return_url"], "jwt": token},
    )
    credential = await tool.repo.credential_by_id(session.credential_id)
    allow_framing_by(request, credential.options.approved_domains)
    return response
