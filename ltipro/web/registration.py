"""``GET /lti/register``: LTI Dynamic Registration, opened by the LMS in a frame or window."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from ltipro.lti.registration import (
    CLOSE_MESSAGE,
    CREDENTIAL_PARAMETER,
    RegistrationError,
    credential_for_link,
    register_platform,
)
from ltipro.tool import Tool
from ltipro.web.security import allow_framing_by
from ltipro.web.templating import render

log = logging.getLogger(__name__)


async def register(request: Request) -> Response:
    """Register the LMS that opened this page, then tell it to close the page."""
    tool: Tool = request.app.state.tool
    params = request.query_params
    try:
        credential = await credential_for_link(
            tool.repo, tool.settings.secret_key, params.get(CREDENTIAL_PARAMETER)
        )
        outcome = await register_platform(
            tool,
            credential,
            params.get("openid_configuration") or "",
            params.get("registration_token") or None,
        )
    except RegistrationError as error:
        log.warning(
            "dynamic registration refused (%s): %s %s", error.code, error.message, error.hint
        )
        response = render(
            request,
            "lti/registration_error.html",
            {"error": error, "close_message": CLOSE_MESSAGE},
            status_code=error.status,
        )
    else:
        response = render(
            request,
            "lti/registration.html",
            {"outcome": outcome, "platform": outcome.platform, "close_message": CLOSE_MESSAGE},
        )
    response.headers["Cache-Control"] = "no-store"
    # The LMS frames this page from its admin pages, which may be on another host than its
    # issuer and are not among the credential's approved domains yet; the page acts on
    # the LMS's own parameters, not on clicks, so framing by anyone exposes nothing.
    allow_framing_by(request, ())
    return response
