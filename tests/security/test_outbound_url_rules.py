"""The tool calls only public https:// addresses — platform key sets, dynamic registration
and LMS REST APIs alike — unless development mode or ``LTIPRO_ALLOW_PRIVATE_URLS=1`` says
the LMS runs on a private network (a test set-up).

Dynamic registration's URLs have their own tests (tests/test_dynamic_registration.py:
configuration URL, every endpoint of the configuration, the allowance); the key set's
private-network refusal is in tests/test_launch13_rules.py. These add the cases those do
not cover: plain http key sets, literal loopback and link-local key-set addresses (the
cloud metadata address among them), the allowance for key sets, the LMS API rule of
``LmsApi.check_url``, and what development mode implies.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from ltipro.lmsapi import LmsApi, LmsNotConfigured, MemoryTokenStore
from ltipro.settings import Settings
from ltipro.storage.schema import courses, platforms
from ltipro.testing.harness import LMS_URL, ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
STUDENT = {
    "sub": "student-1",
    "email": "student@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    CLAIM + "context": {"id": "course-1", "title": "Biology"},
    CLAIM + "resource_link": {"id": "link-1"},
}
REFUSED_ADDRESSES = [
    "https://127.0.0.1/jwks.json",
    "https://localhost/jwks.json",
    "https://[::1]/jwks.json",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/jwks.json",
    "https://[fd00::1]/jwks.json",
]


async def _set_key_set_url(harness: ToolHarness, url: str) -> None:
    async with harness.tool.repo.engine.begin() as conn:
        await conn.execute(
            update(platforms).where(platforms.c.id == harness.registration.id).values(jwks_url=url)
        )


def _key_set_fetches(harness: ToolHarness) -> list[httpx.Request]:
    return [r for r in harness.transport.requests if "jwks" in r.url.path or "meta" in r.url.path]


async def _assert_refused_unsafe_key_set(harness: ToolHarness, page: httpx.Response) -> None:
    assert 400 <= page.status_code < 500, page.text[-500:]
    assert 'data-error-code="unsafe_jwks_url"' in page.text
    assert await harness.tool.repo.count(courses) == 0
    assert _key_set_fetches(harness) == []


async def test_platform_key_set_over_plain_http_is_refused(harness: ToolHarness) -> None:
    await _set_key_set_url(harness, LMS_URL.replace("https://", "http://") + "/jwks.json")
    page = await harness.launch13(STUDENT)
    await _assert_refused_unsafe_key_set(harness, page)


@pytest.mark.parametrize("url", REFUSED_ADDRESSES)
async def test_platform_key_set_on_a_loopback_private_or_link_local_address_is_refused(
    harness: ToolHarness, url: str
) -> None:
    await _set_key_set_url(harness, url)
    page = await harness.launch13(STUDENT)
    await _assert_refused_unsafe_key_set(harness, page)


@pytest.fixture
async def allowing(database_url: str, tmp_path: Path) -> ToolHarness:
    """An installation with ``LTIPRO_ALLOW_PRIVATE_URLS=1``, its LMS on a private network."""
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        settings_overrides={"allow_private_urls": True},
    ) as h:
        h.private_hosts.add("lms.test")
        yield h  # type: ignore[misc]


async def test_private_plain_http_key_set_is_used_when_private_urls_are_allowed(
    allowing: ToolHarness,
) -> None:
    await _set_key_set_url(allowing, "http://lms.test/jwks.json")
    page = await allowing.launch13(STUDENT)
    assert page.status_code == 200, page.text[-500:]
    assert [r.url.scheme for r in _key_set_fetches(allowing)] == ["http"]


def test_development_mode_allows_private_urls_and_production_does_not(tmp_path: Path) -> None:
    base = {"LTIPRO_INSTANCE": str(tmp_path), "LTIPRO_SECRET_KEY": "k" * 40}
    production = {**base, "LTIPRO_BASE_URL": "https://lti.example.edu"}
    assert Settings.from_env(production).allow_private_urls is False
    assert Settings.from_env({**production, "LTIPRO_ALLOW_PRIVATE_URLS": "1"}).allow_private_urls
    assert Settings.from_env({**base, "LTIPRO_DEV": "1"}).allow_private_urls is True


# -- LMS REST API addresses (LmsApi.check_url) ---------------------------------------------------


async def _public(host: str) -> list[str]:
    return {
        "canvas.internal.test": ["10.20.0.4"],
        "rebind.test": ["93.184.215.14", "127.0.0.1"],
    }.get(host, ["93.184.215.14"])


def _api(allow_private: bool = False) -> LmsApi:
    return LmsApi(
        http=httpx.AsyncClient(),
        settings={},
        tokens=MemoryTokenStore(),
        allow_private_urls=allow_private,
        resolver=_public,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://canvas.example.edu/api/v1/courses",
        "https://127.0.0.1/api/v1/courses",
        "https://localhost:8443/api/v1/courses",
        "https://[::1]/api/v1/courses",
        "https://169.254.169.254/latest/meta-data/",
        "https://192.168.1.20/webservice/rest/server.php",
        "https://[fd12:3456::1]/d2l/api",
        "https://canvas.internal.test/api/v1/courses",  # a public-looking name, private address
        "https://rebind.test/api/v1/courses",  # one of its addresses is this machine
        "ftp://canvas.example.edu/",
        "file:///etc/passwd",
        "https://[::1/api",
        "",
    ],
)
async def test_lms_api_url_that_is_not_public_https_is_refused(url: str) -> None:
    api = _api()
    with pytest.raises(LmsNotConfigured) as refused:
        await api.check_url(url)
    message = str(refused.value)
    assert "LMS address" in message
    await api.http.aclose()


async def test_refusal_says_how_to_allow_a_test_lms_on_a_private_network() -> None:
    api = _api()
    with pytest.raises(LmsNotConfigured, match="LTIPRO_ALLOW_PRIVATE_URLS=1"):
        await api.check_url("https://10.0.0.5/api/v1/courses")
    await api.http.aclose()


async def test_public_https_lms_api_url_is_accepted() -> None:
    api = _api()
    url = "https://canvas.example.edu/api/v1/calendar_events?context_codes[]=course_1"
    assert await api.check_url(url) == url
    await api.http.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/api/v1/courses",
        "https://10.0.0.5/webservice/rest/server.php",
        "https://canvas.internal.test/api/v1/courses",
    ],
)
async def test_private_lms_api_url_is_accepted_where_the_installation_allows_it(url: str) -> None:
    api = _api(allow_private=True)
    assert await api.check_url(url) == url
    await api.http.aclose()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://localhost:6379/_FLUSHALL"])
async def test_non_http_schemes_stay_refused_even_where_private_urls_are_allowed(
    url: str,
) -> None:
    api = _api(allow_private=True)
    with pytest.raises(LmsNotConfigured):
        await api.check_url(url)
    await api.http.aclose()
