"""Plugin settings: declared by plugins, validated and stored per credential or platform,
read back with defaults, overrides and secrets decrypted, and set from the command line."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from ltipro.cli import main
from ltipro.extension import RegistrationArtifact, SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.plugin_settings import (
    PluginSettingError,
    declared_settings,
    effective_settings,
    set_plugin_settings,
    setting_values,
)
from ltipro.plugins import PluginError, Plugins
from ltipro.storage.repository import NotFound
from ltipro.storage.schema import plugin_settings
from ltipro.testing.harness import SECRET_KEY, ToolHarness

FIXTURES = Path(__file__).parent / "fixtures"
DEFAULTS = {"api_domain": None, "client_secret": None, "page_size": 50, "mode": "safe"}


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIXTURES))
    return importlib.import_module("sample_plugin")


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, sample_plugin: ModuleType
) -> AsyncIterator[ToolHarness]:
    """The tool with the sample plugin, a credential ``test`` and one platform."""
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("sample", sample_plugin)],
    ) as h:
        yield h


async def _stored_rows(harness: ToolHarness) -> list[Any]:
    async with harness.tool.repo.engine.connect() as conn:
        return list((await conn.execute(select(plugin_settings))).all())


# -- declarations ----------------------------------------------------------------------------------


async def test_declared_settings_lists_each_plugins_settings_in_order(
    sample_plugin: ModuleType,
) -> None:
    plugins = Plugins.load((), extra=[("sample", sample_plugin)])
    declared = await declared_settings(plugins)
    # generic declares none; the built-in providers plugin declares the provider choice
    assert list(declared) == ["sample", "providers"]
    assert declared["providers"][0].key == "provider"
    assert [(s.key, s.scope, s.secret) for s in declared["sample"]] == [
        ("api_domain", "platform", False),
        ("client_secret", "credential", True),
        ("page_size", "credential", False),
        ("mode", "credential", False),
    ]


class Declares:
    """A plugin declaring whatever a test gives it."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def plugin_settings(self) -> Any:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (SettingSpec("bad", "k", "K"), "it must return a list of SettingSpec"),
        ([{"key": "k"}], "declared a setting as dict"),
        ([SettingSpec("canvas", "k", "K")], "for plugin 'canvas': SettingSpec.plugin must be"),
        ([SettingSpec("bad", "k", "K", scope="course")], "with scope 'course'"),  # type: ignore[arg-type]
        ([SettingSpec("bad", "a=b", "K")], "keys are 1 to 100 characters without '='"),
        (
            [SettingSpec("bad", "k", "K"), SettingSpec("bad", "k", "K2")],
            "declares the setting 'k' twice",
        ),
    ],
)
async def test_a_setting_declared_wrongly_is_a_plugin_error_naming_the_plugin(
    answer: Any, message: str
) -> None:
    plugins = Plugins.load((), extra=[("bad", Declares(answer))])
    with pytest.raises(PluginError, match="the plugin 'bad'") as caught:
        await declared_settings(plugins)
    assert message in str(caught.value)


# -- storing and reading back ------------------------------------------------------------------------


async def test_nothing_set_gives_every_declared_key_its_default(harness: ToolHarness) -> None:
    assert await effective_settings(harness.tool, harness.credential, "sample") == DEFAULTS


async def test_credential_values_are_validated_and_read_back(harness: ToolHarness) -> None:
    changed = await set_plugin_settings(
        harness.tool,
        harness.credential,
        "sample",
        {"api_domain": "HTTPS://LMS.Example.edu/courses", "page_size": "20", "mode": "fast"},
    )
    assert changed == ["api_domain", "page_size", "mode"]
    settings = await effective_settings(harness.tool, harness.credential, "sample")
    # What validate returned is stored: a normalized domain and a number, not the text.
    assert settings == {
        **DEFAULTS,
        "api_domain": "lms.example.edu",
        "page_size": 20,
        "mode": "fast",
    }


async def test_platform_value_overrides_the_credential_value(harness: ToolHarness) -> None:
    tool, credential, platform = harness.tool, harness.credential, harness.registration
    await set_plugin_settings(tool, credential, "sample", {"api_domain": "all.example.edu"})
    await set_plugin_settings(
        tool, credential, "sample", {"api_domain": "one.example.edu"}, platform_id=platform.id
    )
    other = await harness.tool.repo.add_platform(
        credential,
        lms="sample",
        issuer="https://other-lms.test",
        client_id="c2",
        deployment_ids=["d2"],
        auth_login_url="https://other-lms.test/auth",
        auth_token_url="https://other-lms.test/token",
        jwks_url="https://other-lms.test/jwks.json",
    )

    async def domain(platform_id: int | None) -> Any:
        return (await effective_settings(tool, credential, "sample", platform_id))["api_domain"]

    assert await domain(platform.id) == "one.example.edu"
    assert await domain(other.id) == "all.example.edu"
    assert await domain(None) == "all.example.edu"
    shown = {
        v.spec.key: (v.shown(), v.source)
        for v in await setting_values(tool, credential, "sample", platform.id)
    }
    assert shown["api_domain"] == ("one.example.edu", "platform")
    assert shown["page_size"] == ("50", "default")


async def test_secret_is_encrypted_at_rest_and_decrypted_for_the_plugin(
    harness: ToolHarness,
) -> None:
    tool, credential = harness.tool, harness.credential
    before = {v.spec.key: v.shown() for v in await setting_values(tool, credential, "sample")}
    assert before["client_secret"] == "not set"
    await set_plugin_settings(tool, credential, "sample", {"client_secret": "hunter2-0123456789"})
    [row] = await _stored_rows(harness)
    assert row.key == "client_secret"
    assert row.value.startswith("enc:v1:")
    assert "hunter2" not in row.value
    settings = await effective_settings(tool, credential, "sample")
    assert settings["client_secret"] == "hunter2-0123456789"
    after = {v.spec.key: v.shown() for v in await setting_values(tool, credential, "sample")}
    assert after["client_secret"] == "set"


async def test_an_empty_value_removes_the_stored_value(harness: ToolHarness) -> None:
    tool, credential, platform = harness.tool, harness.credential, harness.registration
    await set_plugin_settings(
        tool, credential, "sample", {"api_domain": "all.example.edu", "page_size": "10"}
    )
    await set_plugin_settings(
        tool, credential, "sample", {"api_domain": "one.example.edu"}, platform_id=platform.id
    )
    await set_plugin_settings(
        tool, credential, "sample", {"api_domain": ""}, platform_id=platform.id
    )
    settings = await effective_settings(tool, credential, "sample", platform.id)
    assert (settings["api_domain"], settings["page_size"]) == ("all.example.edu", 10)
    await set_plugin_settings(tool, credential, "sample", {"page_size": ""})
    assert (await effective_settings(tool, credential, "sample"))["page_size"] == 50


async def test_stored_keys_the_plugin_no_longer_declares_are_left_out(harness: ToolHarness) -> None:
    await harness.tool.repo.set_plugin_setting(harness.credential.id, "sample", "old_key", "x")
    settings = await effective_settings(harness.tool, harness.credential, "sample")
    assert settings == DEFAULTS


async def test_effective_settings_reach_the_plugins_registration_artifacts(
    harness: ToolHarness,
) -> None:
    tool, credential = harness.tool, harness.credential
    await set_plugin_settings(tool, credential, "sample", {"api_domain": "lms.example.edu"})
    settings = await effective_settings(tool, credential, "sample", harness.registration.id)
    artifacts = await tool.plugins.call_lms(
        "sample",
        "registration_artifacts",
        credential=credential.name,
        base_url=tool.settings.base_url,
        settings=settings,
    )
    assert [type(a) for a in artifacts] == [RegistrationArtifact]
    assert '"api_domain": "lms.example.edu"' in artifacts[0].content
    assert '"page_size": 50' in artifacts[0].content


# -- refusals ----------------------------------------------------------------------------------------


async def test_an_unknown_key_is_refused_with_the_plugins_keys(harness: ToolHarness) -> None:
    with pytest.raises(PluginSettingError) as caught:
        await set_plugin_settings(
            harness.tool, harness.credential, "sample", {"api_domian": "x.edu"}
        )
    assert str(caught.value) == (
        "the plugin 'sample' has no setting 'api_domian' "
        "(its settings: api_domain, client_secret, page_size, mode)"
    )


async def test_a_credential_setting_given_for_a_platform_is_refused(harness: ToolHarness) -> None:
    with pytest.raises(
        PluginSettingError, match="'page_size' is set per credential, not per platform"
    ):
        await set_plugin_settings(
            harness.tool, harness.credential, "sample", {"page_size": "5"}, harness.registration.id
        )
    assert await _stored_rows(harness) == []


async def test_an_invalid_value_is_refused_and_nothing_is_stored(harness: ToolHarness) -> None:
    with pytest.raises(PluginSettingError) as caught:
        await set_plugin_settings(
            harness.tool,
            harness.credential,
            "sample",
            {"api_domain": "lms.example.edu", "page_size": "500"},
        )
    assert (
        str(caught.value) == "sample setting 'page_size': the page size must be between 1 and 100"
    )
    assert await _stored_rows(harness) == []


async def test_a_value_outside_the_choices_is_refused(harness: ToolHarness) -> None:
    with pytest.raises(PluginSettingError, match="Sync mode must be one of: safe, fast"):
        await set_plugin_settings(harness.tool, harness.credential, "sample", {"mode": "turbo"})


async def test_a_platform_of_another_credential_is_refused(harness: ToolHarness) -> None:
    other = await harness.tool.repo.create_credential("other", enabled_plugins=["sample"])
    with pytest.raises(
        PluginSettingError, match=r"platform \d+ is not registered with credential 'other'"
    ):
        await set_plugin_settings(
            harness.tool, other, "sample", {"api_domain": "x.example.edu"}, harness.registration.id
        )
    with pytest.raises(NotFound, match="there is no platform with id 999"):
        await setting_values(harness.tool, harness.credential, "sample", 999)


async def test_an_unknown_plugin_is_refused(harness: ToolHarness) -> None:
    with pytest.raises(PluginSettingError, match="no plugin named 'moodle' is loaded; loaded: "):
        await setting_values(harness.tool, harness.credential, "moodle")


class Unstorable:
    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        return [SettingSpec("unstorable", "when", "When", validate=lambda text: object())]


async def test_a_validator_returning_data_that_is_not_json_is_a_plugin_error(
    harness: ToolHarness,
) -> None:
    harness.plugins.register(Unstorable(), name="unstorable")
    try:
        with pytest.raises(
            PluginError, match="the plugin 'unstorable' validates its setting 'when'"
        ):
            await set_plugin_settings(
                harness.tool, harness.credential, "unstorable", {"when": "now"}
            )
    finally:
        harness.plugins.unregister("unstorable")


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    ltipro_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sample_plugin: ModuleType,
) -> None:
    """A configured installation with the sample plugin installed, a credential and a platform."""
    site = tmp_path / "site-packages"
    info = site / "ltipro_sample-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ltipro-sample\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ltipro]\nsample = sample_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    for key, value in {
        "LTIPRO_INSTANCE": str(tmp_path / "instance"),
        "LTIPRO_SECRET_KEY": SECRET_KEY,
        "LTIPRO_BASE_URL": "https://tool.test",
        "LTIPRO_DATABASE_URL": ltipro_database_url,
        "LTIPRO_PLUGINS": "sample",
    }.items():
        monkeypatch.setenv(key, value)
    # The sample plugin owns a table: the database needs its migration first.
    assert main(["db", "upgrade"]) == 0
    assert main(["credentials", "create", "main"]) == 0
    assert (
        main(
            [
                "platforms",
                "add",
                "--credential=main",
                "--lms=sample",
                "--issuer=https://lms.example.edu",
                "--client-id=c1",
                "--deployment-id=d1",
                "--auth-login-url=https://lms.example.edu/auth",
                "--auth-token-url=https://lms.example.edu/token",
                "--jwks-url=https://lms.example.edu/jwks.json",
            ]
        )
        == 0
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_stores_settings_and_shows_them_without_revealing_secrets(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(
        capsys,
        "plugins", "set", "--credential", "main", "sample",
        "api_domain=lms.example.edu", "client_secret=hunter2-0123456789",
    )  # fmt: skip
    assert status == 0
    assert out == "Stored sample settings for credential 'main': api_domain, client_secret\n"
    status, out, _ = _run(
        capsys, "plugins", "set", "--credential", "main", "--platform", "1", "sample",
        "api_domain=one.example.edu",
    )  # fmt: skip
    assert status == 0
    status, out, _ = _run(
        capsys, "plugins", "settings", "--credential", "main", "sample", "--platform", "1"
    )
    assert status == 0
    assert out.splitlines() == [
        "Settings of the sample plugin for credential 'main', platform 1:",
        "api_domain\tone.example.edu\tset for platform 1\tplatform\tAPI domain",
        "client_secret\tset\tset for the credential\tcredential\tAPI client secret",
        "page_size\t50\tdefault\tcredential\tPage size",
        "mode\tsafe\tdefault\tcredential\tSync mode",
    ]
    status, out, _ = _run(capsys, "plugins", "settings", "--credential", "main", "sample")
    assert "api_domain\tlms.example.edu\tset for the credential\tplatform\tAPI domain" in out
    assert "hunter2" not in out


def test_cli_removes_a_value_given_without_text(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "plugins", "set", "--credential", "main", "sample", "page_size=7")[0] == 0
    status, out, _ = _run(capsys, "plugins", "set", "--credential", "main", "sample", "page_size=")
    assert (status, out) == (0, "Removed sample settings for credential 'main': page_size\n")
    _, out, _ = _run(capsys, "plugins", "settings", "--credential", "main", "sample")
    assert "page_size\t50\tdefault\tcredential\tPage size" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "--credential", "main", "sample", "page_size=0"],
         "sample setting 'page_size': the page size must be between 1 and 100"),
        (["set", "--credential", "main", "sample", "colour=blue"],
         "the plugin 'sample' has no setting 'colour' (its settings: api_domain, client_secret, page_size, mode)"),
        (["set", "--credential", "main", "--platform", "1", "sample", "mode=fast"],
         "sample setting 'mode' is set per credential, not per platform: set it without a platform"),
        (["set", "--credential", "main", "sample", "page_size"],
         "give settings as KEY=VALUE (got 'page_size')"),
        (["set", "--credential", "main", "sample", "mode=fast", "mode=safe"],
         "the setting 'mode' is given twice"),
        (["set", "--credential", "nobody", "sample", "mode=fast"],
         "there is no credential named 'nobody' (see `ltipro credentials list`)"),
        (["settings", "--credential", "main", "--platform", "9", "sample"],
         "there is no platform with id 9"),
        (["settings", "--credential", "main", "canvas"],
         "no plugin named 'canvas' is loaded; loaded: generic, providers, sample"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_settings_with_a_clear_error(
    cli_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = _run(capsys, "plugins", *argv)
    assert status == 2
    assert err == f"ltipro: error: {message}\n"
    assert out == ""
