"""The plugin framework: discovery, LTIPRO_PLUGINS, loud failures, answers of every kind,
per-credential enablement and plugins registered after loading."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ltipro.cli import main
from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import standard_launch_context
from ltipro.plugins import GENERIC, PluginError, Plugins
from ltipro.settings import Settings
from ltipro.storage.schema import courses
from ltipro.testing.harness import SECRET_KEY, ToolHarness

FIXTURES = Path(__file__).parent / "fixtures"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

Install = Callable[..., None]


def teacher(product: str | None = None, **custom: str) -> dict[str, Any]:
    """An instructor's launch claims; ``product`` is the LMS's product family code."""
    claims: dict[str, Any] = {
        "sub": "teacher-1",
        "name": "Ada Lovelace",
        "email": "ada@example.edu",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        CLAIM + "context": {"id": "course-1", "title": "Analytical Engines"},
        CLAIM + "resource_link": {"id": "link-1"},
        CLAIM + "launch_presentation": {"return_url": "https://lms.example.edu/courses/1"},
    }
    if product is not None:
        claims[CLAIM + "tool_platform"] = {"product_family_code": product, "guid": "lms-1"}
    if custom:
        claims[CLAIM + "custom"] = custom
    return claims


# -- test plugins ------------------------------------------------------------------------------


class AnswersOfEveryKind:
    """An LMS plugin whose hooks answer with a callable, an awaitable and a plain value."""

    @hookimpl
    def lms_details(self) -> Callable[[], LmsDetails]:
        return lambda: LmsDetails(
            name="everykind", title="Every Kind LMS", product_family_codes=("everykind",)
        )

    @hookimpl
    async def identify_lms(self, message: LaunchMessage) -> str | None:
        await asyncio.sleep(0)
        return "everykind" if message.product_family_code == "everykind" else None

    @hookimpl
    async def launch_context(self, message: LaunchMessage) -> LaunchContext:
        await asyncio.sleep(0)
        context = standard_launch_context(message, lms="everykind")
        return replace(context, username=message.custom.get("login_id"))

    @hookimpl
    def course_identifiers(self, message: LaunchMessage) -> Callable[[], CourseIdentifiers]:
        context = message.claim("context") or {}
        return lambda: CourseIdentifiers(
            context["id"], lms_course_id=message.custom.get("course_number")
        )


class ConfiguredLms:
    """An LMS plugin that identifies launches by product family code ``testlms``."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="testlms", title="Test LMS", product_family_codes=("testlms",))

    @hookimpl
    def identify_lms(self, message: LaunchMessage) -> str | None:
        return "testlms" if message.product_family_code == "testlms" else None

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms="testlms")


class MisspeltHook:
    @hookimpl
    def launch_contxt(self, message: LaunchMessage) -> None:
        return None


class ExtraArgument:
    @hookimpl
    def identify_lms(self, message: LaunchMessage, request: object) -> None:
        return None


class WrongName:
    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="canvas", title="Canvas")


class AsyncRoutes:
    @hookimpl
    async def plugin_routes(self) -> list[Any]:
        return []


class AsyncDetails:
    @hookimpl
    async def lms_details(self) -> LmsDetails:
        return LmsDetails(name="asyncdetails", title="Async details")


# -- throwaway installed distributions ---------------------------------------------------------


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The sample plugin package in tests/fixtures, importable as ``sample_plugin``."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    return importlib.import_module("sample_plugin")


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install distributions the way pip would, into a folder put on ``sys.path``.

    Each gets a real ``*.dist-info`` with ``METADATA`` and ``entry_points.txt``, so
    ``importlib.metadata`` finds its ``ltipro`` entry points like any installed package.
    """
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    written: list[str] = []

    def install_distribution(
        name: str, entry_points: Mapping[str, str], modules: Mapping[str, str] | None = None
    ) -> None:
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
        (info / "entry_points.txt").write_text("[ltipro]\n" + lines)
        for module, source in (modules or {}).items():
            (site / f"{module}.py").write_text(source)
            written.append(module)
        importlib.invalidate_caches()

    yield install_distribution
    for module in written:
        sys.modules.pop(module, None)


OTHER_PLUGIN = """
from ltipro.extension import LmsDetails
from ltipro.hookspecs import hookimpl


@hookimpl
def lms_details():
    return LmsDetails(name="other", title="Other Test LMS")
"""

BROKEN_PLUGIN = """
raise ImportError("No module named 'zoomsdk'")
"""


@pytest.fixture
def two_installed(install: Install, sample_plugin: ModuleType) -> None:
    install("ltipro-sample", {"sample": "sample_plugin"})
    install("ltipro-other", {"other": "ltipro_other_plugin"}, {"ltipro_other_plugin": OTHER_PLUGIN})


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {
        "LTIPRO_INSTANCE": str(tmp_path / "instance"),
        "LTIPRO_SECRET_KEY": SECRET_KEY,
        "LTIPRO_BASE_URL": "https://tool.test",
        **values,
    }


# -- discovery and LTIPRO_PLUGINS ----------------------------------------------------------------


def test_installed_plugin_is_found_through_its_entry_point(
    install: Install, sample_plugin: ModuleType
) -> None:
    install("ltipro-sample", {"sample": "sample_plugin"})
    plugins = Plugins.load()
    assert plugins.plugin("sample") is sample_plugin
    # Other plugins of the checkout may be installed too; generic always comes last.
    assert "sample" in plugins.lms_names
    assert plugins.lms_names[-1] == GENERIC
    assert plugins.title("sample") == "Sample LMS"


def test_plugins_not_installed_are_not_loaded(sample_plugin: ModuleType) -> None:
    # The module is importable, but no distribution declares it: it must not load.
    assert "sample" not in Plugins.load().lms_names


def test_ltipro_plugins_limits_which_installed_plugins_load(
    two_installed: None, tmp_path: Path
) -> None:
    def loaded(**env: str) -> list[str]:
        return Plugins.load(Settings.from_env(_env(tmp_path, **env)).plugins).lms_names

    assert {"other", "sample"} <= set(loaded())
    assert loaded(LTIPRO_PLUGINS="sample") == ["sample", GENERIC]
    assert loaded(LTIPRO_PLUGINS=" other , sample ") == ["other", "sample", GENERIC]
    assert loaded(LTIPRO_PLUGINS="") == [GENERIC]


def test_ltipro_plugins_naming_an_uninstalled_plugin_is_an_error(two_installed: None) -> None:
    with pytest.raises(PluginError, match=r"not installed: zoomy$"):
        Plugins.load(["sample", "zoomy"])


def test_cli_lists_the_plugins_ltipro_plugins_allows_and_refuses_unknown_ones(
    two_installed: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in _env(tmp_path, LTIPRO_PLUGINS="other").items():
        monkeypatch.setenv(key, value)
    assert main(["plugins", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "other\tOther Test LMS",
        f"{GENERIC}\tOther LMS (standard LTI)",
    ]
    monkeypatch.setenv("LTIPRO_PLUGINS", "other,zoomy")
    assert main(["plugins", "list"]) == 2
    err = capsys.readouterr().err
    assert err == "ltipro: error: LTIPRO_PLUGINS names plugins that are not installed: zoomy\n"


# -- loud failures ----------------------------------------------------------------------------------


def test_plugin_that_fails_to_import_gives_a_plugin_error_naming_it(install: Install) -> None:
    install(
        "ltipro-broken", {"broken": "ltipro_broken_plugin"}, {"ltipro_broken_plugin": BROKEN_PLUGIN}
    )
    with pytest.raises(PluginError) as caught:
        Plugins.load()
    message = str(caught.value)
    assert "'broken'" in message
    assert "ltipro_broken_plugin" in message
    assert "No module named 'zoomsdk'" in message


def test_plugin_that_fails_to_import_is_not_loaded_when_ltipro_plugins_leaves_it_out(
    install: Install, sample_plugin: ModuleType
) -> None:
    install(
        "ltipro-broken", {"broken": "ltipro_broken_plugin"}, {"ltipro_broken_plugin": BROKEN_PLUGIN}
    )
    install("ltipro-sample", {"sample": "sample_plugin"})
    assert Plugins.load(["sample"]).lms_names == ["sample", GENERIC]


def test_hookimpl_whose_name_is_not_a_hook_fails_loudly() -> None:
    with pytest.raises(PluginError) as caught:
        Plugins.load((), extra=[("typo", MisspeltHook())])
    assert str(caught.value) == (
        "the plugin 'typo' implements 'launch_contxt', which is not an ltipro hook "
        "(did you mean 'launch_context'?); the hooks are listed in docs/plugins.md"
    )


def test_hookimpl_with_an_argument_its_hook_does_not_have_fails_loudly() -> None:
    with pytest.raises(PluginError, match="the plugin 'extra' does not match the ltipro hooks"):
        Plugins.load((), extra=[("extra", ExtraArgument())])


def test_plugin_describing_another_lms_is_refused() -> None:
    with pytest.raises(PluginError, match="plugin 'mycanvas' describes itself as 'canvas'"):
        Plugins.load((), extra=[("mycanvas", WrongName())])


def test_two_plugins_with_one_name_are_refused() -> None:
    with pytest.raises(PluginError, match="two plugins are named 'generic'"):
        Plugins.load((), extra=[(GENERIC, ConfiguredLms())])


def test_hooks_read_from_synchronous_code_refuse_an_awaitable_clearly() -> None:
    with pytest.raises(PluginError, match="'asyncdetails' answered lms_details with an awaitable"):
        Plugins.load((), extra=[("asyncdetails", AsyncDetails())])
    plugins = Plugins.load((), extra=[("asyncroutes", AsyncRoutes())])
    with pytest.raises(PluginError, match="'asyncroutes' answered plugin_routes with an awaitable"):
        plugins.broadcast_sync("plugin_routes")


# -- answers of every kind ---------------------------------------------------------------------------


async def test_hooks_may_answer_with_a_value_a_callable_or_an_awaitable() -> None:
    plugins = Plugins.load((), extra=[("everykind", AnswersOfEveryKind())])
    # lms_details answered with a callable, read at load time.
    assert plugins.title("everykind") == "Every Kind LMS"
    message = LaunchMessage(
        version="1.3",
        claims=teacher("everykind", login_id="ada", course_number="4711"),
        credential="test",
    )
    # identify_lms and launch_context answered with awaitables.
    assert await plugins.identify(message) == "everykind"
    context = await plugins.call_lms("everykind", "launch_context", message=message)
    assert isinstance(context, LaunchContext)
    assert (context.lms, context.username) == ("everykind", "ada")
    # course_identifiers answered with a callable.
    course = await plugins.call_lms("everykind", "course_identifiers", message=message)
    assert course == CourseIdentifiers("course-1", lms_course_id="4711")
    # broadcast_named resolves each answer and says whose it is.
    named = await plugins.broadcast_named("identify_lms", message=message)
    assert named == [("everykind", "everykind")]


async def test_async_launch_context_serves_a_full_launch(harness: ToolHarness) -> None:
    harness.plugins.register(AnswersOfEveryKind(), name="everykind")
    try:
        await harness.tool.repo.set_enabled_plugins(
            harness.credential, [*harness.credential.enabled_plugins, "everykind"]
        )
        page = await harness.launch13(teacher("everykind", login_id="ada", course_number="4711"))
        assert page.status_code == 200, page.text
        me = await harness.me(page)
        assert (me["lms"], me["lms_title"]) == ("everykind", "Every Kind LMS")
        assert me["user"]["username"] == "ada"
        assert me["course"]["lms_course_id"] == "4711"
        async with harness.tool.repo.engine.connect() as conn:
            rows = (await conn.execute(courses.select())).all()
        assert [(r.lms, r.lms_course_id) for r in rows] == [("everykind", "4711")]
    finally:
        harness.plugins.unregister("everykind")
    assert "everykind" not in harness.plugins.lms_names


# -- register and unregister after loading -------------------------------------------------------------


async def test_register_after_load_adds_a_plugin_and_unregister_removes_it() -> None:
    plugins = Plugins.load(())
    message = LaunchMessage(version="1.3", claims=teacher("testlms"), credential="test")
    assert await plugins.identify(message) == GENERIC
    plugins.register(ConfiguredLms(), name="testlms")
    assert plugins.lms_names == ["testlms", GENERIC]
    assert await plugins.identify(message) == "testlms"
    assert plugins.implements("testlms", "launch_context")
    plugins.unregister("testlms")
    assert plugins.lms_names == [GENERIC]
    assert await plugins.identify(message) == GENERIC
    with pytest.raises(PluginError, match="no plugin named 'testlms' is loaded"):
        plugins.unregister("testlms")


def test_register_after_load_checks_the_plugin_and_leaves_nothing_behind() -> None:
    plugins = Plugins.load(())
    with pytest.raises(PluginError, match="'launch_contxt', which is not an ltipro hook"):
        plugins.register(MisspeltHook(), name="typo")
    assert plugins.plugin("typo") is None
    with pytest.raises(PluginError, match="describes itself as 'canvas'"):
        plugins.register(WrongName(), name="mycanvas")
    assert plugins.plugin("mycanvas") is None
    assert plugins.lms_names == [GENERIC]
    with pytest.raises(PluginError, match="two plugins are named 'generic'"):
        plugins.register(ConfiguredLms(), name=GENERIC)


# -- enablement per credential ----------------------------------------------------------------------


def _harness(database_url: str, tmp_path: Path, **kwargs: Any) -> ToolHarness:
    return ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("testlms", ConfiguredLms())],
        **kwargs,
    )


async def test_launch_from_an_lms_whose_plugin_is_disabled_is_refused_and_logged(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path, enabled_plugins=[GENERIC]) as harness:
        page = await harness.launch13(teacher("testlms"))
        assert page.status_code == 403
        assert 'data-error-code="plugin_disabled"' in page.text
        assert "Launches from Test LMS are turned off" in page.text
        log = await harness.tool.repo.recent_launches()
        assert [(r.outcome, r.code, r.lms) for r in log] == [
            ("refused", "plugin_disabled", "testlms")
        ]
        assert "Test LMS" in log[0].message
        assert "'testlms' plugin is not enabled for credential 'test'" in log[0].message
        assert log[0].credential_id == harness.credential.id
        assert await harness.tool.repo.count(courses) == 0


async def test_launch_from_an_lms_whose_plugin_is_enabled_is_served_by_it(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path, enabled_plugins=[GENERIC, "testlms"]) as harness:
        page = await harness.launch13(teacher("testlms"))
        assert page.status_code == 200, page.text
        assert (await harness.me(page))["lms"] == "testlms"


async def test_generic_serves_an_lms_without_a_plugin_while_another_is_disabled(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path, enabled_plugins=[GENERIC]) as harness:
        page = await harness.launch13(teacher("someotherlms"))
        assert page.status_code == 200, page.text
        me = await harness.me(page)
        assert (me["lms"], me["lms_title"]) == (GENERIC, "Other LMS (standard LTI)")


async def test_registration_lms_is_the_fallback_when_no_plugin_identifies_the_launch(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path, lms="testlms") as harness:
        page = await harness.launch13(teacher(product=None))
        assert page.status_code == 200, page.text
        assert (await harness.me(page))["lms"] == "testlms"


async def test_fallback_to_the_registration_lms_still_honours_enablement(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path, lms="testlms", enabled_plugins=[GENERIC]) as h:
        page = await h.launch13(teacher(product=None))
        assert page.status_code == 403
        assert 'data-error-code="plugin_disabled"' in page.text


async def test_lti11_launch_is_identified_by_its_product_family_code(
    database_url: str, tmp_path: Path
) -> None:
    async with _harness(database_url, tmp_path) as harness:
        page = await harness.launch11(
            {
                "resource_link_id": "link-1",
                "user_id": "teacher-1",
                "roles": "Instructor",
                "context_id": "course-1",
                "context_title": "Analytical Engines",
                "lis_person_contact_email_primary": "ada@example.edu",
                "launch_presentation_return_url": "https://lms.example.edu/courses/1",
                "tool_consumer_info_product_family_code": "testlms",
            }
        )
        assert page.status_code == 200, page.text
        assert (await harness.me(page))["lms"] == "testlms"
