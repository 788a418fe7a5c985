"""The tool's Brightspace token: refreshed when it expires, with rotating refresh tokens.

Brightspace answers every refresh with a new refresh token and refuses the old one from
then on, so the new one must be stored before anything else happens, refreshes must not
run twice at once, and a refresh that loses a race with another process must pick up
that process's token instead of giving up.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ltipro_d2l.calendar import calendar_create_event
from ltipro_d2l.oauth import SUBJECT, access_token
from ltipro_d2l.settings import config_from
from ltipro_d2l.testing import CLIENT_ID, CLIENT_SECRET, BrightspaceDouble

from ltipro.context import CourseIdentifiers
from ltipro.extension import CalendarEvent
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsThrottled,
    LmsUnavailable,
    MemoryTokenStore,
    StoredToken,
)

COURSE = CourseIdentifiers(context_id="522938", lms_course_id="522938")
PAST = datetime(2020, 1, 1, tzinfo=UTC)


def event(marker: str = "ltipro:m-1:20260302T1500Z", hour: int = 15) -> CalendarEvent:
    start = datetime(2026, 3, 2, hour, 0, tzinfo=UTC)
    return CalendarEvent(
        marker=marker,
        title="Office hours",
        start=start,
        end=start + timedelta(hours=1),
        timezone="UTC",
        join_url="https://meet.example.edu/x",
    )


async def expire_stored(api: LmsApi) -> StoredToken:
    token = await api.tokens.get(SUBJECT)
    assert token is not None
    expired = replace(token, expires_at=PAST)
    await api.tokens.put(SUBJECT, expired)
    return expired


async def create(api: LmsApi, **kwargs: Any) -> str:
    return await calendar_create_event(
        course=COURSE, event=event(**kwargs), settings=dict(api.settings), api=api
    )


async def test_an_expired_token_is_refreshed_and_the_new_refresh_token_stored_before_use(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    old = await expire_stored(d2l_api)
    order: list[str] = []
    tokens = d2l_api.tokens
    assert isinstance(tokens, MemoryTokenStore)
    put = tokens.put

    async def recording_put(subject: str, token: StoredToken) -> None:
        order.append(f"stored {token.refresh_token}")
        await put(subject, token)

    tokens.put = recording_put  # type: ignore[method-assign]
    seen = len(brightspace.requests)

    await create(d2l_api)

    (form,) = brightspace.token_requests
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
        "scope": "core:*:*",
    }
    token_call = brightspace.requests[seen]
    assert token_call.path == "/core/connect/token"
    assert token_call.headers["authorization"].startswith("Basic ")
    fresh = await tokens.get(SUBJECT)
    assert fresh is not None
    assert fresh.refresh_token != old.refresh_token
    assert fresh.expires_at is not None and fresh.expires_at > datetime.now(UTC)
    assert order == [f"stored {fresh.refresh_token}"]
    # Every API call went out with the new access token.
    for request in brightspace.api_requests():
        assert request.headers["authorization"] == f"Bearer {fresh.access_token}"
    assert old.refresh_token in brightspace.used_refresh_tokens


async def test_concurrent_calls_refresh_once(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    await expire_stored(d2l_api)
    config = config_from(d2l_api.settings)

    tokens = await asyncio.gather(*(access_token(d2l_api, config) for _ in range(5)))

    assert len(brightspace.token_requests) == 1
    assert len(set(tokens)) == 1


async def test_a_refresh_lost_to_another_process_uses_that_processs_new_token(
    brightspace: BrightspaceDouble, d2l_api: LmsApi, d2l_http: httpx.AsyncClient
) -> None:
    stale = await expire_stored(d2l_api)
    store = d2l_api.tokens
    assert isinstance(store, MemoryTokenStore)

    class RacingStore(MemoryTokenStore):
        """Reads the stale token, while another worker rotates it just then."""

        reads = 0

        async def get(self, subject: str) -> StoredToken | None:
            self.reads += 1
            if self.reads == 2:
                answer = await d2l_http.post(
                    "https://auth.brightspace.com/core/connect/token",
                    data={"grant_type": "refresh_token", "refresh_token": stale.refresh_token},
                    auth=(CLIENT_ID, CLIENT_SECRET),
                )
                self.tokens[subject] = StoredToken.from_oauth(answer.json())
                return stale
            return await super().get(subject)

    racing = RacingStore(store.tokens)
    api = replace(d2l_api, tokens=racing)

    await create(api)

    theirs = racing.tokens[SUBJECT]
    assert [f["refresh_token"] for f in brightspace.token_requests] == [stale.refresh_token] * 2
    assert brightspace.api_requests()[-1].headers["authorization"] == (
        f"Bearer {theirs.access_token}"
    )


async def test_a_refused_refresh_token_tells_the_admin_to_connect_again(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    await expire_stored(d2l_api)
    brightspace.revoke()

    with pytest.raises(LmsNotAuthorized, match="connect Brightspace again") as caught:
        await create(d2l_api)
    assert "invalid_grant" in str(caught.value)
    assert brightspace.api_requests() == []


async def test_a_token_brightspace_refuses_before_its_expiry_is_refreshed_once(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.expire_access_tokens()

    await create(d2l_api)

    assert len(brightspace.token_requests) == 1
    statuses = [r.status for r in brightspace.api_requests()]
    assert statuses == [401, 200, 200]


async def test_a_wrong_client_secret_is_named_in_the_error(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    await expire_stored(d2l_api)
    api = replace(d2l_api, settings={**d2l_api.settings, "client_secret": "wrong"})
    with pytest.raises(LmsNotAuthorized, match="client_secret"):
        await create(api)


async def test_a_token_endpoint_that_throttles_or_fails_is_retried_later_not_disconnected(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    old = await expire_stored(d2l_api)
    brightspace.throttle_next(retry_after=9, where="token")
    with pytest.raises(LmsThrottled) as caught:
        await create(d2l_api)
    assert caught.value.retry_after == 9
    brightspace.fail_next(503, where="token")
    with pytest.raises(LmsUnavailable):
        await create(d2l_api)
    assert await d2l_api.tokens.get(SUBJECT) == old
    await create(d2l_api)  # once Brightspace is back, the same refresh token still works


async def test_an_authorisation_without_a_refresh_token_asks_to_connect_again(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    token = await expire_stored(d2l_api)
    await d2l_api.tokens.put(SUBJECT, replace(token, refresh_token=None))
    with pytest.raises(LmsNotAuthorized, match="Enable refresh tokens"):
        await create(d2l_api)
