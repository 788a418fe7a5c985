"""``ltipro platforms config``: what an LMS admin pastes into each LMS, from the command line.

The installation loads the four LMS plugins (installed next to the core) and runs on
SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL`` is set. A mistake ends
with exit status 2 and one ``ltipro: error:`` line, never a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ltipro.cli import main
from ltipro.extension import LmsDetails, RegistrationArtifact, SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import registration_signer
from ltipro.plugins import Plugins
from ltipro.testing.artifacts import artifact_problems

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
BASE_URL = "https://tool.example.edu"
SECRET_KEY = "config-test-secret-key-" + "k" * 32
LMS_PLUGINS = ("canvas", "moodle", "d2l", "blackboard")
# The LMSs whose artefacts include the dynamic-registration URL.
DYNAMIC = {"canvas", "moodle", "d2l", "generic"}
LTI11 = ["--lti11-key", "college-key", "--lti11-secret", "college-shared-secret-0123"]


@dataclass
class Result:
    status: int
    out: str
    err: str


class EchoPlugin:
    """An LMS plugin whose only artefact shows the settings the core handed it."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="echo", title="Echo LMS")

    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        return [SettingSpec("echo", "greeting", "Greeting", default="hello")]

    @hookimpl
    def registration_artifacts(
        self, credential: str, base_url: str, settings: Mapping[str, Any]
    ) -> list[RegistrationArtifact]:
        body = json.dumps({"credential": credential, "settings": dict(settings)})
        return [RegistrationArtifact("echo", "Echo", "json", body)]


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=BACKENDS)
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """An installation after `ltipro init` with the credential `college`, once per backend.

    The commands tested here only read, so the installation is shared by the module.
    """
    env = {
        "LTIPRO_INSTANCE": str(tmp_path_factory.mktemp("ltipro-config") / "instance"),
        "LTIPRO_BASE_URL": BASE_URL,
        "LTIPRO_SECRET_KEY": SECRET_KEY,
        "LTIPRO_PLUGINS": ",".join(LMS_PLUGINS),
    }
    database = None
    if request.param == "postgresql":
        assert PG_URL is not None
        database = f"ltipro_config_{os.getpid()}_{secrets.token_hex(4)}"
        admin = create_engine(_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        env["LTIPRO_DATABASE_URL"] = (
            make_url(PG_URL).set(database=database).render_as_string(hide_password=False)
        )
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["init"]) == 0
        assert main(["credentials", "create", "college", *LTI11]) == 0
        assert main(["credentials", "create", "no-lti11"]) == 0
    try:
        yield env
    finally:
        if database is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def run(
    installation: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    """Runs `ltipro` in the installation's environment and captures what it prints."""
    for name in list(os.environ):
        if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
            monkeypatch.delenv(name)
    for name, value in installation.items():
        monkeypatch.setenv(name, value)

    def command(*argv: str) -> Result:
        capsys.readouterr()
        status = main(list(argv))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return Result(status, captured.out, captured.err)

    return command


def config_json(run: Any, lms: str, *extra: str) -> dict[str, Any]:
    result = run("platforms", "config", "--credential", "college", "--lms", lms, "--json", *extra)
    assert result.status == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def as_artifacts(data: dict[str, Any]) -> list[RegistrationArtifact]:
    return [RegistrationArtifact(**a) for a in data["artifacts"]]


# -- each LMS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lms", [*LMS_PLUGINS, "generic"])
def test_json_output_gives_each_lms_its_valid_artefacts(run: Any, lms: str) -> None:
    data = config_json(run, lms)
    assert (data["credential"], data["lms"], data["tool_url"]) == ("college", lms, BASE_URL)
    assert data["lti11_key"] == "college-key"
    assert "college-shared-secret" not in json.dumps(data)
    artifacts = as_artifacts(data)
    assert artifact_problems(artifacts, BASE_URL) == []
    assert {a.lms for a in artifacts} == {lms}
    assert [a.kind for a in artifacts][-1] == "xml"  # every LMS gets the LTI 1.1 cartridge
    assert all(a.help for a in artifacts)


@pytest.mark.parametrize("lms", sorted(DYNAMIC))
def test_the_registration_url_is_the_credentials_signed_url(run: Any, lms: str) -> None:
    [url] = [a for a in as_artifacts(config_json(run, lms, "--days", "5")) if a.kind == "url"]
    assert url.content.startswith(BASE_URL + "/lti/register?credential=")
    token = parse_qs(urlsplit(url.content).query)["credential"][0]
    assert registration_signer(SECRET_KEY).verify(token)["credential"] == "college"


def test_blackboard_gets_no_registration_url(run: Any) -> None:
    assert "url" not in {a.kind for a in as_artifacts(config_json(run, "blackboard"))}


def test_the_canvas_developer_key_in_the_output_is_pasteable_json(run: Any) -> None:
    [key] = [a for a in as_artifacts(config_json(run, "canvas")) if a.kind == "json"]
    config = json.loads(key.content)
    assert config["public_jwk_url"] == BASE_URL + "/.well-known/jwks.json"
    assert config["extensions"][0]["privacy_level"] == "public"
    assert "course_navigation" in {
        p["placement"] for p in config["extensions"][0]["settings"]["placements"]
    }


def test_text_output_shows_each_artefact_with_its_title_help_and_content(run: Any) -> None:
    result = run("platforms", "config", "--credential", "college", "--lms", "moodle")
    assert result.status == 0, result.err
    assert result.out.startswith(
        "Installing the tool in Moodle for credential 'college' (tool URL https://tool.example.edu)."
    )
    assert "LTI 1.1 consumer key: college-key (the shared secret is not shown)" in result.out
    for heading in (
        "== LTI Dynamic Registration URL ==",
        "== Manual LTI 1.3 configuration ==",
        "== LTI 1.1 configuration (cartridge XML) ==",
    ):
        assert heading in result.out
    assert "Share launcher's email with tool: Always" in result.out
    assert "<cartridge_basiclti_link" in result.out
    assert result.err == ""


def test_a_credential_without_an_lti11_key_is_told_so(run: Any) -> None:
    result = run("platforms", "config", "--credential", "no-lti11", "--lms", "canvas")
    assert result.status == 0, result.err
    assert "this credential has no consumer key, so LTI 1.1 launches are refused" in result.out
    data = json.loads(
        run("platforms", "config", "--credential", "no-lti11", "--lms", "canvas", "--json").out
    )
    assert data["lti11_key"] is None


# -- mistakes ------------------------------------------------------------------------------------


def _fails(result: Result, says: str) -> None:
    assert result.status == 2, (result.out, result.err)
    assert result.err.startswith("ltipro: error: "), result.err
    assert says in result.err, result.err
    assert result.out == ""


def test_an_lms_without_a_plugin_is_refused_with_the_installed_ones(run: Any) -> None:
    result = run("platforms", "config", "--credential", "college", "--lms", "sakai")
    _fails(result, "no plugin for LMS 'sakai' is installed; installed: blackboard, canvas")


def test_an_unknown_credential_is_refused(run: Any) -> None:
    result = run("platforms", "config", "--credential", "nobody", "--lms", "canvas")
    _fails(result, "there is no credential named 'nobody'")


@pytest.mark.parametrize("days", ["0", "366"])
def test_a_registration_url_lifetime_out_of_range_is_refused(run: Any, days: str) -> None:
    result = run(
        "platforms", "config", "--credential", "college", "--lms", "canvas", "--days", days
    )
    _fails(result, f"--days must be 1 to 365 (got {days})")


def test_missing_options_are_a_usage_error(run: Any) -> None:
    result = run("platforms", "config", "--lms", "canvas")
    assert result.status == 2
    assert "the following arguments are required: --credential" in result.err


# -- plugin settings ---------------------------------------------------------------------------


def test_the_plugins_settings_for_the_credential_reach_its_hook(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = Plugins.load.__func__  # type: ignore[attr-defined]

    def with_echo(cls: type[Plugins], only: Any = None, extra: Any = ()) -> Plugins:
        loaded: Plugins = load(cls, only, [*extra, ("echo", EchoPlugin())])
        return loaded

    monkeypatch.setattr(Plugins, "load", classmethod(with_echo))
    before = config_json(run, "echo")
    assert json.loads(before["artifacts"][0]["content"]) == {
        "credential": "college",
        "settings": {"greeting": "hello"},  # the default
    }
    assert run("plugins", "set", "--credential", "college", "echo", "greeting=bonjour").status == 0
    try:
        after = config_json(run, "echo")
        assert json.loads(after["artifacts"][0]["content"])["settings"] == {"greeting": "bonjour"}
    finally:
        assert run("plugins", "set", "--credential", "college", "echo", "greeting=").status == 0
    # The credential was made before the plugin was installed, so it is not enabled.
    result = run("platforms", "config", "--credential", "college", "--lms", "echo")
    assert "the echo plugin is not enabled for college" in result.err
