"""Take the README's screenshots of the main pages from a development server.

    .venv/bin/python scripts/screenshots.py

Starts the tool in development mode on a free port with a throwaway instance folder,
launches it from the built-in LMS simulator as an instructor and as a student, schedules
a meeting, signs in to the admin console, and writes PNGs to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import async_playwright

from ltipro.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(
            os.environ,
            LTIPRO_DEV="1",
            LTIPRO_INSTANCE=folder,
            LTIPRO_PORT=str(port),
            LTIPRO_PLUGINS="canvas,moodle,d2l,blackboard,sakai",
        )
        env.pop("LTIPRO_BASE_URL", None)
        subprocess.run([BIN / "ltipro", "init"], env=env, check=True, capture_output=True)
        subprocess.run(
            [
                BIN / "ltipro",
                "admins",
                "create",
                "admin@example.edu",
                "--superuser",
                "--password-stdin",
            ],
            env=env,
            input=b"screenshot-password-123\n",
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen(
            [BIN / "ltipro", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(shoot(f"http://localhost:{port}"))
        finally:
            server.terminate()
            server.wait(timeout=10)


async def shoot(base: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1200, "height": 820})
        for _ in range(50):
            try:
                await page.goto(base + "/simulator/")
                break
            except Exception:
                await asyncio.sleep(0.2)
        await page.screenshot(path=str(OUT / "simulator.png"))
        await page.select_option("#example", "canvas/teacher-13")
        await page.fill("#context_title", "Biology 101")
        await page.click("button[type=submit]")
        tool = page.frame_locator("iframe.tool")
        await tool.locator("#topic").wait_for(state="attached")
        await tool.locator("summary", has_text="Schedule a meeting").click()
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        await tool.locator("#topic").fill("Week 3 office hours")
        await tool.locator("#date").fill(tomorrow)
        await tool.locator("#time").fill("15:00")
        await tool.locator("form[action='/meetings/schedule'] button[type=submit]").click()
        await tool.locator("text=Scheduled").wait_for()
        await page.screenshot(path=str(OUT / "instructor-meetings.png"))

        student = await browser.new_page(viewport={"width": 420, "height": 820})
        await student.goto(base + "/simulator/")
        await student.select_option("#example", "canvas/student-13")
        await student.fill("#context_title", "Biology 101")
        await student.click("button[type=submit]")
        await student.frame_locator("iframe.tool").locator("text=Week 3 office hours").wait_for()
        await student.screenshot(path=str(OUT / "student-meetings-phone.png"))

        admin = await browser.new_page(viewport={"width": 1200, "height": 1000})
        await admin.goto(base + "/admin/login")
        await admin.fill("input[name=email]", "admin@example.edu")
        await admin.fill("input[name=password]", "screenshot-password-123")
        await admin.click("button[type=submit]")
        await admin.wait_for_load_state()
        await admin.screenshot(path=str(OUT / "admin-console.png"), full_page=False)
        await browser.close()


if __name__ == "__main__":
    main()
