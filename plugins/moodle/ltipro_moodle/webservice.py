"""Calling Moodle's web services over its REST protocol, and reading its answers.

Moodle's REST server (``/webservice/rest/server.php``) takes the token, the function
name and the output format as ``wstoken``, ``wsfunction`` and ``moodlewsrestformat``,
and the function's parameters PHP-style: ``events[0][name]=...``. We POST them as a
form so the token never lands in a URL (server access logs, proxies).

Moodle answers a failed call with HTTP 200 and
``{"exception": ..., "errorcode": ..., "message": ...}``; HTTP status codes only come
from what sits in front of PHP (403 when the REST protocol is off, 429 from a throttling
proxy, 5xx). :func:`call` turns each into the :mod:`ltipro.lmsapi` error the job queue
acts on, with a message that tells the Moodle admin what to change.

References: https://docs.moodle.org/dev/Web_service_API_functions,
https://docs.moodle.org/en/Using_web_services, moodle/moodle ``webservice/rest/locallib.php``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsRequestRefused,
    LmsUnavailable,
    raise_for_lms_status,
    transport_error,
)
from ltipro_moodle.settings import SERVICE_FUNCTIONS, TOKEN_HELP, site_url, token

LMS = "Moodle"
SERVER_PATH = "/webservice/rest/server.php"

# Error codes that mean the token or its user lacks a right the admin can grant.
_TOKEN_ERRORS = {"invalidtoken", "invalidtimedtoken", "invalidiptoken", "usernotconfirmed"}
_ACCESS_ERRORS = {"accessexception", "servicenotavailable", "nopermissions", "nopermission"}
_CAPABILITY_HELP = (
    "Give the token's user the capability moodle/calendar:manageentries in the course (for "
    "instance through a system role), and webservice/rest:use."
)


class MoodleException(LmsRequestRefused):
    """A Moodle exception answer that is neither about the token nor about access."""

    def __init__(self, message: str, errorcode: str, exception: str) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.exception = exception


def flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """PHP-style form fields: ``{"events": [{"name": "x"}]}`` -> ``events[0][name]=x``."""
    fields: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}[{key}]", inner)
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            for index, inner in enumerate(value):
                walk(f"{prefix}[{index}]", inner)
        elif isinstance(value, bool):
            fields.append((prefix, "1" if value else "0"))
        elif value is not None:
            fields.append((prefix, str(value)))

    for key, value in params.items():
        walk(key, value)
    return fields


def endpoint(settings: Mapping[str, Any], api: LmsApi) -> str:
    return site_url(settings, api) + SERVER_PATH


async def call(
    function: str, params: Mapping[str, Any], settings: Mapping[str, Any], api: LmsApi
) -> Any:
    """Call the web-service ``function`` and return its decoded JSON answer."""
    url = await api.check_url(endpoint(settings, api))
    form = [
        ("wstoken", token(settings)),
        ("wsfunction", function),
        ("moodlewsrestformat", "json"),
        *flatten(params),
    ]
    try:
        response = await api.http.post(
            url,
            data=dict(form),  # every key is distinct: the PHP-style names carry indexes
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, LMS) from exc
    return answer(response, function)


def answer(response: httpx.Response, function: str) -> Any:
    """The JSON a function returned, or the error its answer stands for."""
    if response.status_code == 403 and not response.text.strip():
        # server.php answers a bare 403 when web services or REST are switched off.
        raise LmsNotAuthorized(
            "Moodle refused the web-service call with 403: enable web services (Site "
            "administration > Advanced features > Enable web services) and the REST "
            "protocol (Site administration > Server > Web services > Manage protocols)"
        )
    if response.status_code == 404:
        raise LmsNotConfigured(
            f"there is no Moodle web service at {response.request.url.copy_with(query=None)} "
            "(404): check the Moodle site URL setting"
        )
    raise_for_lms_status(response, LMS)
    try:
        body = response.json() if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LmsUnavailable(
            f"Moodle answered {function} with something that is not JSON "
            f"({response.headers.get('content-type', 'no content type')})"
        ) from None
    if isinstance(body, Mapping) and "exception" in body:
        raise exception_error(body, function)
    return body


def exception_error(body: Mapping[str, Any], function: str) -> Exception:
    """The error for Moodle's ``{"exception", "errorcode", "message"}`` answer."""
    errorcode = str(body.get("errorcode") or "")
    exception = str(body.get("exception") or "")
    message = str(body.get("message") or "")
    said = f"Moodle answered {function} with {exception} ({errorcode}): {message}"
    if errorcode in _TOKEN_ERRORS:
        return LmsNotAuthorized(f"{said}. The web-service token is wrong or expired. {TOKEN_HELP}")
    if errorcode in _ACCESS_ERRORS or exception in (
        "webservice_access_exception",
        "required_capability_exception",
        "require_login_exception",
    ):
        return LmsNotAuthorized(
            f"{said}. Add {', '.join(SERVICE_FUNCTIONS)} to the external service of the "
            f"token (Site administration > Server > Web services > External services > "
            f"Functions). {_CAPABILITY_HELP}"
        )
    return MoodleException(said, errorcode, exception)


def refused_warnings(body: Any, function: str) -> None:
    """Raise for ``nopermissions`` warnings, which Moodle gives instead of an exception."""
    warnings = body.get("warnings") if isinstance(body, Mapping) else None
    for warning in warnings or ():
        if isinstance(warning, Mapping) and warning.get("warningcode") == "nopermissions":
            raise LmsNotAuthorized(
                f"Moodle answered {function} with the warning nopermissions "
                f"({warning.get('message', '')}). {_CAPABILITY_HELP}"
            )


__all__ = ["MoodleException", "answer", "call", "flatten", "refused_warnings"]
