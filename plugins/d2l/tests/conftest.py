"""Fixtures for the D2L plugin's tests: the tool with only this plugin installed.

Every launch test runs on SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
is set (``.ci/run`` sets it); the databases come from ltipro's pytest plugin. Fixture
names carry the plugin's name so they never shadow the core's fixtures when every test
suite runs in one pytest session.
"""

from __future__ import annotations

import httpx
import pytest
from ltipro_d2l.oauth import SUBJECT
from ltipro_d2l.testing import AUTH_HOST, CLIENT_ID, CLIENT_SECRET, BrightspaceDouble

from ltipro.context import CourseIdentifiers
from ltipro.lmsapi import LmsApi, MemoryTokenStore, StoredToken
from ltipro.testing.pytest_plugin import harness_fixture
from ltipro.testing.transport import RoutingTransport

#: The tool with the D2L plugin (and the built-in generic one) loaded and enabled.
d2l_harness = harness_fixture("d2l")


# -- Brightspace's API, doubled ----------------------------------------------------------------

BRIGHTSPACE_HOST = "school.brightspace.com"
ORG_UNIT = 522938
GROUP = 7001

#: The d2l plugin's settings for a Brightspace whose OAuth app is connected.
SETTINGS = {
    "base_url": f"https://{BRIGHTSPACE_HOST}",
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "le_version": "1.82",
    "scope": "core:*:*",
}
COURSE = CourseIdentifiers(
    context_id=str(ORG_UNIT), lms_course_id=str(ORG_UNIT), domain=BRIGHTSPACE_HOST
)


async def _public(host: str) -> list[str]:
    return ["93.184.215.14"]


@pytest.fixture
def brightspace() -> BrightspaceDouble:
    """Brightspace with one course (org unit 522938) that has a group, Lab A (7001)."""
    double = BrightspaceDouble(host=BRIGHTSPACE_HOST)
    double.add_org_unit(ORG_UNIT, "Calculus I", "MTH-251-01", groups={GROUP: "Lab A"})
    return double


@pytest.fixture
async def d2l_http(brightspace: BrightspaceDouble) -> httpx.AsyncClient:
    transport = RoutingTransport({AUTH_HOST: brightspace, BRIGHTSPACE_HOST: brightspace})
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def d2l_api(brightspace: BrightspaceDouble, d2l_http: httpx.AsyncClient) -> LmsApi:
    """An API handle for the course, connected: the token an authorisation left behind."""
    tokens = MemoryTokenStore({SUBJECT: StoredToken.from_oauth(brightspace.issue_tokens())})
    return LmsApi(
        http=d2l_http,
        settings=SETTINGS,
        tokens=tokens,
        credential_id=1,
        platform_id=None,
        resolver=_public,
    )
