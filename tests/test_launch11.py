"""LTI 1.1 launches: OAuth1 HMAC-SHA1 signatures, timestamp window, single-use nonces."""

from __future__ import annotations

import time
from typing import Any

from ltipro.lti.launch11 import verify_signature
from ltipro.storage.schema import courses
from ltipro.testing.harness import LTI11_KEY, LTI11_SECRET, ToolHarness


def canvas_teacher() -> dict[str, Any]:
    """Canvas's LTI 1.1 teacher launch (published in alt-cs-lab/lti-toolkit's docs),
    inlined so the tests do not depend on files outside the repository."""
    return {
        "context_id": "4dde05e8ca1973bcca9bffc13e1548820eee93a3",
        "context_label": "LTI10",
        "context_title": "LTI 1.0 Test Course",
        "custom_canvas_api_domain": "canvas.home.russfeld.me",
        "custom_canvas_course_id": "1",
        "custom_canvas_module_id": "$Canvas.module.id",
        "custom_canvas_user_id": "3",
        "custom_canvas_user_login_id": "canvasteacher@russfeld.me",
        "ext_roles": "urn:lti:instrole:ims/lis/Instructor,urn:lti:role:ims/lis/Instructor,urn:lti:sysrole:ims/lis/User",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_locale": "en",
        "launch_presentation_return_url": "https://canvas.home.russfeld.me/courses/1/assignments",
        "lis_person_contact_email_primary": "canvasteacher@russfeld.me",
        "lis_person_name_family": "TeacherLast",
        "lis_person_name_full": "TeacherFirst TeacherLast",
        "lis_person_name_given": "TeacherFirst",
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "ae06e3eb8ea83588f0a1c5897b98830dc93f47d8",
        "roles": "Instructor",
        "tool_consumer_info_product_family_code": "canvas",
        "user_id": "c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c",
    }


async def assert_refused_11(harness: ToolHarness, response: Any, code: str) -> None:
    assert response.status_code == 401 or 400 <= response.status_code < 500
    assert f'data-error-code="{code}"' in response.text, response.text[-1200:]
    log = await harness.tool.repo.recent_launches()
    assert log[0].outcome == "refused" and log[0].code == code
    assert await harness.tool.repo.count(courses) == 0


async def test_signed_launch_is_accepted_with_the_same_context_as_lti13(
    harness: ToolHarness,
) -> None:
    page = await harness.launch11(canvas_teacher())
    assert page.status_code == 200, page.text[-800:]
    me = await harness.me(page)
    assert me["lti_version"] == "1.1"
    assert me["user"]["id"] == "c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c"
    assert me["user"]["name"] == "TeacherFirst TeacherLast"
    assert me["email"] == "canvasteacher@russfeld.me"
    assert me["role"] == "instructor"
    assert me["course"]["context_id"] == "4dde05e8ca1973bcca9bffc13e1548820eee93a3"
    assert me["course"]["title"] == "LTI 1.0 Test Course"
    assert me["domain"] == "canvas.home.russfeld.me"
    assert me["credential"] == "test"
    log = await harness.tool.repo.recent_launches()
    assert (log[0].outcome, log[0].lti_version) == ("ok", "1.1")


async def test_tampered_field_breaks_the_signature(harness: ToolHarness) -> None:
    page = await harness.launch11(canvas_teacher(), tamper={"roles": "Administrator"})
    await assert_refused_11(harness, page, "bad_signature")
    assert page.status_code == 401


async def test_wrong_secret_is_refused(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(
        canvas_teacher(), url="https://tool.test/lti/launch", secret="not-the-shared-secret"
    )
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused_11(harness, page, "bad_signature")


async def test_signature_over_another_url_is_refused(harness: ToolHarness) -> None:
    # The signature base is the public URL (LTIPRO_BASE_URL), not the proxy's internal one.
    page = await harness.launch11(canvas_teacher(), url="http://internal:8000/lti/launch")
    await assert_refused_11(harness, page, "bad_signature")


async def test_launch_url_with_a_query_string_is_verified_with_it(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(
        canvas_teacher(), url="https://tool.test/lti/launch?placement=course_navigation"
    )
    page = await harness.client.post("/lti/launch?placement=course_navigation", data=form)
    assert page.status_code == 200, page.text[-600:]


async def test_stale_timestamp_is_refused(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(
        canvas_teacher(), url="https://tool.test/lti/launch", timestamp=int(time.time()) - 3600
    )
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused_11(harness, page, "stale_timestamp")


async def test_future_timestamp_is_refused(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(
        canvas_teacher(), url="https://tool.test/lti/launch", timestamp=int(time.time()) + 3600
    )
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused_11(harness, page, "stale_timestamp")


async def test_replayed_nonce_is_refused(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(canvas_teacher(), url="https://tool.test/lti/launch")
    first = await harness.client.post("/lti/launch", data=form)
    assert first.status_code == 200
    replay = await harness.client.post("/lti/launch", data=form)
    assert replay.status_code == 401
    assert 'data-error-code="replayed_nonce"' in replay.text


async def test_unknown_consumer_key_is_refused(harness: ToolHarness) -> None:
    harness.platform.lti11_key = "someone-else"
    page = await harness.launch11(canvas_teacher())
    await assert_refused_11(harness, page, "unknown_consumer_key")


async def test_other_message_types_are_refused(harness: ToolHarness) -> None:
    params = canvas_teacher() | {"lti_message_type": "ContentItemSelectionRequest"}
    page = await harness.launch11(params)
    await assert_refused_11(harness, page, "unsupported_message")


async def test_launch_needs_a_resource_link_id(harness: ToolHarness) -> None:
    params = canvas_teacher()
    del params["resource_link_id"]
    page = await harness.launch11(params)
    await assert_refused_11(harness, page, "bad_message")


async def test_plaintext_signature_method_is_refused(harness: ToolHarness) -> None:
    form = harness.platform.lti11_form(canvas_teacher(), url="https://tool.test/lti/launch")
    form["oauth_signature_method"] = "PLAINTEXT"
    form["oauth_signature"] = f"{LTI11_SECRET}&"
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused_11(harness, page, "bad_signature")


def test_signature_computed_by_hand_per_oauth_1_0_is_accepted() -> None:
    """An HMAC-SHA1 signature built straight from RFC 5849 section 3.4 (not with oauthlib)
    over a real Canvas payload, unresolved ``$Canvas...`` variable and all, verifies."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import quote

    def pct(value: str) -> str:
        return quote(value, safe="~-._")

    form = canvas_teacher() | {
        "oauth_consumer_key": LTI11_KEY,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": "aVAIWQpIfbCZAtCr5FP0ruPHY4522yzGwhtFLNIA4",
        "oauth_version": "1.0",
        "oauth_callback": "about:blank",
    }
    url = "https://tool.test/lti/launch"
    pairs = sorted((pct(k), pct(v)) for k, v in form.items())
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join(["POST", pct(url), pct(normalized)])
    key = f"{pct(LTI11_SECRET)}&".encode()
    form["oauth_signature"] = base64.b64encode(
        hmac.new(key, base.encode(), hashlib.sha1).digest()
    ).decode()
    assert verify_signature(url, form, LTI11_SECRET)
    form["custom_canvas_user_id"] = "4"
    assert not verify_signature(url, form, LTI11_SECRET)
