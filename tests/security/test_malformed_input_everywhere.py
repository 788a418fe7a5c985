"""Malformed forms and JSON at the meetings API, the admin sign-in and the config API:
a clear 4xx, never a 500, and nothing stored (property-based: hypothesis makes the input).

The LTI entry points (/lti/login, /lti/launch, junk claims in signed and unsigned tokens)
are covered the same way in tests/test_malformed_input.py. Each property here runs a
few dozen examples so the suite stays fast.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ltipro.passwords import hash_password
from ltipro.storage.admin_repository import AdminRepository
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import audit_log, protocol_state
from ltipro.testing.harness import ToolHarness
from ltipro.web.admin import SESSION_KIND

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR = {
    "sub": "teacher",
    "name": "Teacher",
    "email": "teacher@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    CLAIM + "context": {"id": "bio-101", "title": "Biology"},
    CLAIM + "resource_link": {"id": "link-bio"},
}
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

text = st.text(max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
MEETING_FIELDS = st.sampled_from(
    [
        "topic",
        "agenda",
        "start_time",
        "duration",
        "timezone",
        "recurrence",
        "audience",
        "settings",
        "password",
        "alternative_hosts",
    ]
)
# Values that look almost right: the edges a validator must get right.
near_values = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "99999999999999999999",
        "2026-02-30T10:00:00",
        "2026-13-01T10:00",
        "10:00",
        "Mars/Olympus",
        "UTC",
        "<script>alert(1)</script>",
        "\x00",
        "\U0001d518\U0001d52b\u200b\u202e",
        "a" * 5000,
    ]
)
bodies = st.dictionaries(MEETING_FIELDS | text, json_values | near_values, max_size=6)


@pytest.fixture
def running(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[asyncio.AbstractEventLoop, ToolHarness]]:
    """One harness for many generated requests, driven from a synchronous test."""
    loop = asyncio.new_event_loop()
    harness = ToolHarness(database_url=database_url, instance=tmp_path / "instance", plugins=[])
    loop.run_until_complete(harness.__aenter__())
    try:
        yield loop, harness
    finally:
        loop.run_until_complete(harness.__aexit__(None, None, None))
        loop.close()


async def _count(harness: ToolHarness, table: Any, *where: Any) -> int:
    async with harness.tool.repo.engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for condition in where:
            query = query.where(condition)
        return int((await conn.execute(query)).scalar_one())


def _assert_clear_refusal(response: httpx.Response, *allowed_success: int) -> None:
    status = response.status_code
    assert status < 500, (status, response.text[-600:])
    assert status in allowed_success or 400 <= status < 500, status
    assert "Traceback" not in response.text
    if 400 <= status < 500 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"]
        assert isinstance(body.get("message"), str) and body["message"]


# -- the meetings API ---------------------------------------------------------------------


def _instructor_token(loop: asyncio.AbstractEventLoop, harness: ToolHarness) -> str:
    page = loop.run_until_complete(harness.launch13(INSTRUCTOR))
    assert page.status_code == 200, page.text[-500:]
    return harness.session_token(page)


def test_malformed_meeting_json_is_refused_clearly_and_stores_nothing(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running
    token = _instructor_token(loop, harness)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    @EXAMPLES
    @given(bodies | json_values)
    def check(body: Any) -> None:
        before = loop.run_until_complete(_count(harness, meetings))
        harness.client.cookies.clear()
        response = loop.run_until_complete(
            harness.client.post("/api/v1/meetings", content=json.dumps(body), headers=headers)
        )
        _assert_clear_refusal(response, 201)
        after = loop.run_until_complete(_count(harness, meetings))
        assert after == before + (1 if response.status_code == 201 else 0)

    check()


def test_bytes_that_are_not_json_are_a_400_at_every_json_route(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running
    token = _instructor_token(loop, harness)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    key = loop.run_until_complete(harness.tool.repo.create_api_key(harness.credential, "sis"))
    config = f"/api/v1/credentials/{harness.credential.id}/config"

    @EXAMPLES
    @given(st.binary(max_size=60).filter(lambda b: not _is_json(b)))
    def check(raw: bytes) -> None:
        harness.client.cookies.clear()
        created = loop.run_until_complete(
            harness.client.post("/api/v1/meetings", content=raw, headers=headers)
        )
        assert created.status_code == 400, created.text
        patched = loop.run_until_complete(
            harness.client.patch(
                config,
                content=raw,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
        )
        assert patched.status_code == 400, patched.text

    check()
    assert loop.run_until_complete(_count(harness, meetings)) == 0
    assert loop.run_until_complete(_count(harness, audit_log)) == 0


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def test_malformed_meeting_changes_are_refused_and_leave_the_meeting_as_it_was(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running
    token = _instructor_token(loop, harness)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    harness.client.cookies.clear()
    made = loop.run_until_complete(
        harness.client.post(
            "/api/v1/meetings",
            json={"topic": "Office hours", "duration": 30, "start_time": "2030-01-07T10:00:00Z"},
            headers=headers,
        )
    )
    assert made.status_code == 201, made.text
    uid = made.json()["uid"] if "uid" in made.json() else made.json()["id"]

    def current() -> Any:
        harness.client.cookies.clear()
        return loop.run_until_complete(
            harness.client.get(f"/api/v1/meetings/{uid}", headers=headers)
        ).json()

    @EXAMPLES
    @given(bodies)
    def check(changes: dict[str, Any]) -> None:
        before = current()
        harness.client.cookies.clear()
        response = loop.run_until_complete(
            harness.client.patch(f"/api/v1/meetings/{uid}", json=changes, headers=headers)
        )
        _assert_clear_refusal(response, 200)
        if response.status_code != 200:
            assert current() == before

    check()


# -- the admin sign-in form -----------------------------------------------------------------


LOGIN_FIELDS = st.sampled_from(["email", "password", "next", "csrf_token"])


def test_malformed_admin_sign_in_forms_are_refused_and_open_no_session(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running
    loop.run_until_complete(
        AdminRepository(harness.tool.repo.engine).create_admin(
            "admin@example.edu", hash_password("a long and secret passphrase"), superuser=True
        )
    )
    form_page = loop.run_until_complete(harness.client.get("/admin/login"))
    csrf = unescape(re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)[1])  # type: ignore[index]
    sessions_before = loop.run_until_complete(
        _count(harness, protocol_state, protocol_state.c.kind == SESSION_KIND)
    )

    # Fewer examples: each signed-in attempt runs the password hash, slow on purpose.
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.dictionaries(LOGIN_FIELDS | text, text | near_values, max_size=5),
        st.booleans(),
    )
    def check(form: dict[str, str], with_csrf: bool) -> None:
        if with_csrf:
            form = {**form, "csrf_token": csrf}
        response = loop.run_until_complete(harness.client.post("/admin/login", data=form))
        _assert_clear_refusal(response)
        assert "ltipro_admin=" not in response.headers.get("set-cookie", "")

    check()
    # Failed sign-ins may be counted (for the lockout); no admin session was stored.
    stored = loop.run_until_complete(
        _count(harness, protocol_state, protocol_state.c.kind == SESSION_KIND)
    )
    assert stored == sessions_before == 0


# -- the config API ------------------------------------------------------------------------------


def test_malformed_option_changes_by_api_are_refused_all_or_nothing(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running
    key = loop.run_until_complete(harness.tool.repo.create_api_key(harness.credential, "sis"))
    path = f"/api/v1/credentials/{harness.credential.id}/config"
    headers = {"Authorization": f"Bearer {key}"}
    names = list(
        loop.run_until_complete(harness.client.get(path, headers=headers)).json()["options"]
    )
    option_names = st.sampled_from(names)

    @EXAMPLES
    @given(
        st.dictionaries(option_names | text, json_values | near_values, min_size=1, max_size=4)
        | json_values
    )
    def check(body: Any) -> None:
        before = loop.run_until_complete(harness.client.get(path, headers=headers)).json()
        audits = loop.run_until_complete(_count(harness, audit_log))
        response = loop.run_until_complete(harness.client.patch(path, json=body, headers=headers))
        _assert_clear_refusal(response, 200)
        if response.status_code != 200:
            after = loop.run_until_complete(harness.client.get(path, headers=headers)).json()
            assert after == before
            assert loop.run_until_complete(_count(harness, audit_log)) == audits

    check()
