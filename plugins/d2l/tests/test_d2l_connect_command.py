"""``python -m ltipro_d2l connect``: the command an admin runs, as they run it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ltipro_d2l.__main__ import main
from ltipro_d2l.testing import CLIENT_ID, CLIENT_SECRET

from ltipro.plugin_settings import set_plugin_settings
from ltipro.settings import Settings
from ltipro.testing.harness import SECRET_KEY
from ltipro.tool import Tool

BASE_URL = "https://tool.example.edu"


@pytest.fixture
def environment(ltipro_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "LTIPRO_BASE_URL": BASE_URL,
        "LTIPRO_SECRET_KEY": SECRET_KEY,
        "LTIPRO_DATABASE_URL": ltipro_database_url,
        "LTIPRO_INSTANCE": str(tmp_path / "instance"),
        "LTIPRO_PLUGINS": "d2l",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def set_up() -> None:
        tool = await Tool.open(Settings.from_env())
        try:
            credential = await tool.repo.create_credential("main", enabled_plugins=["d2l"])
            await set_plugin_settings(
                tool, credential, "d2l", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
            )
        finally:
            await tool.close()

    asyncio.run(set_up())


@pytest.mark.usefixtures("environment")
def test_connect_prints_the_redirect_uri_and_a_start_link(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connect", "--credential", "main"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"Redirect URI to register in Brightspace: {BASE_URL}/plugins/d2l/oauth/callback"
    )
    assert lines[-1].startswith(f"{BASE_URL}/plugins/d2l/oauth/start?token=")


@pytest.mark.usefixtures("environment")
def test_connect_for_an_unknown_credential_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connect", "--credential", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "ltipro_d2l: error: there is no credential named 'nope'\n"
