"""The bytes of one launch: the login query, the redirect, the cookies, the id_token, the page.

Sizes follow a real launch (see bench/README.md): a login query of ~350 bytes, a redirect
to the LMS of ~500 bytes with the state cookie, a form post of an RS256 ``id_token``
(~1,500 bytes, a 2048-bit key) and its ``state``, and a first page of ~10 KB with the
session cookie. The page is a Jinja2 template rendered once here, so the HTTP servers
send exactly what the in-process render produces.
"""

from __future__ import annotations

import base64
import json
import time
from functools import cache
from typing import Any
from urllib.parse import urlencode

ISSUER = "https://lms.example.edu"
CLIENT_ID = "10000000000042"
DEPLOYMENT_ID = "1:3a8e0f2b6c4d"
TOOL = "https://tool.example.edu"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
STATE = "tq0Jxq7bG4v0X2mJc1VwXoM2l5Vg8H0mQ2xZ3nR6yKc"
NONCE = "Hn4d1Q9sLk2WmV7pX0cB5tYr8uE3aZ6fJ1gN4oP7iQs"

LOGIN_QUERY = urlencode(
    {
        "iss": ISSUER,
        "login_hint": "b1e4c6d2-5f0a-4e3b-9c7d-8a2f1e6b3c90.9f2b8c1e4a7d3f60b2e5c8a1d4f7b0e3",
        "target_link_uri": TOOL + "/lti/launch",
        "client_id": CLIENT_ID,
        "lti_deployment_id": DEPLOYMENT_ID,
        "lti_message_hint": "eyJjb3Vyc2UiOjQyLCJsaW5rIjoiNzcxIn0.c2lnbmF0dXJlLW9mLWhpbnQ",
    }
)
LOCATION = (
    ISSUER
    + "/api/lti/authorize_redirect?"
    + urlencode(
        {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": CLIENT_ID,
            "redirect_uri": TOOL + "/lti/launch",
            "login_hint": "b1e4c6d2-5f0a-4e3b-9c7d-8a2f1e6b3c90.9f2b8c1e4a7d3f60b2e5c8a1d4f7b0e3",
            "lti_message_hint": "eyJjb3Vyc2UiOjQyLCJsaW5rIjoiNzcxIn0.c2lnbmF0dXJlLW9mLWhpbnQ",
            "state": STATE,
            "nonce": NONCE,
        }
    )
)
STATE_COOKIE_NAME = "lti_state"
SESSION_COOKIE_NAME = "lti_session"
SESSION_ID = "s7Kp2Vn9Qx4Lm8Rt1Wz6Yb3Hc5Jd0Fg2Ae4Uo7Ik9Sl"
SESSION_VALUE = SESSION_ID + ".MTc2NDI2NjQwMA.5d1f0c9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a"
STATE_MAX_AGE = 600
SESSION_MAX_AGE = 28800


def set_cookie(name: str, value: str, max_age: int, path: str) -> str:
    """A ``Set-Cookie`` value as the tools send it behind their TLS proxy."""
    return f"{name}={value}; HttpOnly; Max-Age={max_age}; Path={path}; SameSite=None; Secure"


STATE_SET_COOKIE = set_cookie(STATE_COOKIE_NAME, STATE, STATE_MAX_AGE, "/lti")
SESSION_SET_COOKIE = set_cookie(SESSION_COOKIE_NAME, SESSION_VALUE, SESSION_MAX_AGE, "/")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def id_token_claims(now: int | None = None) -> dict[str, Any]:
    """A resource-link launch's claims (an instructor in a course), as an LMS sends them."""
    now = int(time.time()) if now is None else now
    return {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "8f2c6a1e4b7d",
        "exp": now + 3600,
        "iat": now,
        "nonce": NONCE,
        "name": "Ada Lovelace",
        CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": DEPLOYMENT_ID,
        CLAIM + "target_link_uri": TOOL + "/lti/launch",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        CLAIM + "context": {
            "id": "4dde05e8ca1973bc",
            "label": "PHYS101",
            "title": "Introduction to Physics",
        },
        CLAIM + "resource_link": {"id": "200d101f-2c14"},
    }


def sign_rs256(claims: dict[str, Any], private_key: Any, kid: str) -> str:
    """An RS256 JWT signed with ``private_key`` (a ``cryptography`` RSA private key)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


# -- the first page ---------------------------------------------------------------------------

PAGE_TEMPLATE = """<!doctype html>
<html lang="{{ locale }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Meetings · {{ course.title }}</title>
<link rel="stylesheet" href="{{ static }}/app.css">
<script src="{{ static }}/app.js" defer></script>
</head>
<body class="{{ 'instructor' if user.instructor else 'learner' }}">
<header>
  <h1>Meetings</h1>
  <p class="course">{{ course.title }} ({{ course.label }})</p>
  <p class="user">Signed in as {{ user.name }} &lt;{{ user.email }}&gt;</p>
</header>
<main>
{% if user.instructor %}
  <form method="post" action="{{ base }}/meetings/new">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <label>Title <input name="title" required maxlength="200"></label>
    <label>Starts <input name="starts" type="datetime-local" required></label>
    <button type="submit">Schedule a meeting</button>
  </form>
{% endif %}
  <table class="meetings">
    <thead><tr><th>Meeting</th><th>When</th><th>Host</th><th></th></tr></thead>
    <tbody>
{% for meeting in meetings %}
      <tr id="meeting-{{ meeting.id }}" class="{{ meeting.state }}">
        <td><a href="{{ base }}/meetings/{{ meeting.id }}">{{ meeting.title }}</a></td>
        <td><time datetime="{{ meeting.starts_iso }}">{{ meeting.starts }}</time></td>
        <td>{{ meeting.host }}</td>
        <td><a class="button" href="{{ base }}/meetings/{{ meeting.id }}/join">Join</a>
{% if user.instructor %}
          <a class="button" href="{{ base }}/meetings/{{ meeting.id }}/edit">Edit</a>
{% endif %}</td>
      </tr>
{% endfor %}
    </tbody>
  </table>
</main>
<footer><p>{{ footer }}</p></footer>
</body>
</html>
"""


def page_context() -> dict[str, Any]:
    """What the page shows: the user, the course and 24 meetings."""
    meetings = [
        {
            "id": 1000 + i,
            "title": f"Week {i + 1}: lecture & questions <{i % 3}>",
            "starts_iso": f"2026-12-{(i % 28) + 1:02d}T14:00:00Z",
            "starts": f"Tuesday {(i % 28) + 1} December 2026, 14:00",
            "host": "Ada Lovelace",
            "state": "upcoming" if i % 5 else "live",
        }
        for i in range(24)
    ]
    return {
        "locale": "en",
        "static": "/static",
        "base": "",
        "csrf": "k1V0rT8pQ3mX6nB2cZ9wY4sL7dF5gH1jK0aE3uI8oP2",
        "user": {"name": "Ada Lovelace", "email": "ada.lovelace@example.edu", "instructor": True},
        "course": {"title": "Introduction to Physics", "label": "PHYS101"},
        "meetings": meetings,
        "footer": "Times are shown in Europe/Paris.",
    }


# A page of the same size that is mostly markup: a course with two meetings and the
# page's stylesheet inline (~8 KB of static text, ~40 substitutions instead of ~330).
_STYLE = "\n".join(
    f".meetings tr.row-{i} td {{ padding: {i % 7}px {i % 5 + 4}px; border-bottom: 1px solid #e{i % 10}e{i % 10}e{i % 10}; }}"
    for i in range(111)
)
LIGHT_TEMPLATE = PAGE_TEMPLATE.replace("</head>", "<style>\n" + _STYLE + "\n</style>\n</head>")


def light_context() -> dict[str, Any]:
    context = page_context()
    context["meetings"] = context["meetings"][:2]
    return context


def page_template(kind: str = "light") -> Any:
    """A page's template, compiled once (as a tool's template cache holds it)."""
    import jinja2

    environment = jinja2.Environment(autoescape=True)
    return environment.from_string(LIGHT_TEMPLATE if kind == "light" else PAGE_TEMPLATE)


def context_for(kind: str = "light") -> dict[str, Any]:
    return light_context() if kind == "light" else page_context()


@cache
def page(kind: str = "light") -> str:
    """A first page, rendered once."""
    return page_template(kind).render(**context_for(kind))


LOGIN_PATH = "/lti/login"
LAUNCH_PATH = "/lti/launch"
PAGE_MARKER = "<h1>Meetings</h1>"
