"""The tool with the Canvas plugin, the LMS simulator and a Canvas double, all served,
as the Canvas browser tests need them: set up the way an admin does it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from test_third_party_cookies import CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS

from ltipro.testing.servers import (
    SimulatorConfig,
    ToolConfig,
    free_port,
    register_platform,
    run_cli,
    running,
    serve_app_in_thread,
    start_simulator,
    start_tool,
)

CREDENTIAL = "college"


@contextmanager
def canvas_site(
    tmp: Path, name: str, canvas: Any, canvas_port: int, settings: Sequence[str]
) -> Iterator[tuple[str, str]]:
    """The tool (Canvas plugin, its API at ``canvas`` served on ``canvas_port``, with the
    plugin's further ``settings``) and the simulator registered with it; yields the
    tool's and the simulator's URLs once all three answer."""
    tool_port, lms_port = free_port(), free_port()
    tool = ToolConfig(
        instance=tmp / "instance",
        base_url=f"http://localhost:{tool_port}",
        database_url=f"sqlite:///{tmp / 'ltipro.db'}",
        plugins=("generic", "canvas"),
    )
    simulator = SimulatorConfig(
        port=lms_port,
        tool_url=tool.base_url,
        key_file=tmp / "platform-key.json",
        client_id=f"{name}-client",
        deployment_id=f"{name}-deployment",
        plugins=("generic", "canvas"),
    )
    lms = start_simulator(simulator, log_dir=tmp, wait=False)
    with running(lms):
        run_cli(tool, "init")
        with start_tool(tool, port=tool_port, log_dir=tmp, wait=False) as process:
            register_platform(
                tool,
                credential=CREDENTIAL,
                issuer=simulator.issuer,
                client_id=simulator.client_id,
                deployment_id=simulator.deployment_id,
                lms="canvas",
            )
            run_cli(
                tool,
                "plugins",
                "set",
                "--credential",
                CREDENTIAL,
                "canvas",
                f"api_base_url=http://127.0.0.1:{canvas_port}",
                *settings,
            )
            with serve_app_in_thread(canvas, canvas_port, "Canvas double"):
                lms.wait_until_ready()
                process.wait_until_ready()
                yield tool.base_url, simulator.issuer


@asynccontextmanager
async def chromium_browser() -> AsyncIterator[Any]:
    """One headless Debian Chromium, closed afterwards."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=STEP_TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            await browser.close()
