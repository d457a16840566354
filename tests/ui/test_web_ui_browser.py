"""The web UI in a real browser: headless Chromium opens the UI of a running consumer fed by
a running agent (spool file -> flume-agent -> avro -> flume-consumer), and what the page
rendered is checked: the windows table holds the expected top URLs with their counts, the
charts have drawn points, the receivers table shows the connected agent, and updates keep
arriving by themselves (pushed, no reload). A screenshot is left in the test's temp dir."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from scripts.genlog import expected_counts, generate, write_spool_file
from tests.e2e.procs import (
    ROOT,
    Proc,
    free_port,
    start_agent,
    start_consumer,
    wait_listening,
    wait_until,
)
from tests.ui.browser import chromium_path, open_page

pytestmark = pytest.mark.e2e
LINES, TOP = 3000, 5


def ui_state(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except OSError:
        return {}


async def check_page(url: str, tmp_path: Path, expected: list[list[Any]]) -> None:
    want = json.dumps(json.dumps(expected, separators=(",", ":")))
    async with open_page(url, tmp_path / "profile", tmp_path / "chromium.log") as page:
        await page.wait_for("document.body && document.body.dataset.batches > 0", 60,
                            "the first state")
        tops = await page.wait_for(f"""(() => {{
            const last = [...document.querySelectorAll('#windows table.window')].pop();
            if (!last) return null;
            const rows = [...last.tBodies[0].rows].map(r => [r.cells[1].textContent,
                                                            Number(r.cells[2].textContent)]);
            return JSON.stringify(rows) === {want} ? rows : null;
        }})()""", 30, f"the last window to show {expected}")
        assert tops == expected
        for chart in ("chart-input", "chart-processing", "chart-delay", "chart-dropped"):
            points = await page.wait_for(
                f"Number(document.getElementById('{chart}').dataset.points) > 0 && "
                f"document.querySelectorAll('#{chart} canvas').length", 30, f"{chart} drawn")
            assert points == 1
        peers = await page.evaluate(
            "document.querySelector('#receivers td.peers').textContent")
        assert peers.startswith("127.0.0.1:"), peers
        seen = int(await page.evaluate("document.body.dataset.batches"))
        await page.wait_for(f"document.body.dataset.batches > {seen + 1}", 30,
                            "batches pushed to the page")
        assert await page.evaluate("document.getElementById('status').dataset.state") == "live"
        await page.screenshot(tmp_path / "ui.png")
    assert (tmp_path / "ui.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ui_of_a_running_consumer_fed_by_a_running_agent(tmp_path: Path) -> None:
    chromium_path()  # skip early (outside CI) when there is no browser
    port, ui_port = free_port(), free_port()
    spool, staging = tmp_path / "spool", tmp_path / "staging"
    spool.mkdir()
    staging.mkdir()
    consumer = start_consumer(["--port", str(port), "--ui-port", str(ui_port), "--top",
                               str(TOP)], tmp_path / "consumer.log", log_level="info")
    agent: Proc | None = None
    try:
        wait_listening(port, consumer)
        wait_listening(ui_port, consumer)
        agent = start_agent(ROOT / "configs" / "spooldir-avro.conf", "a1",
                            tmp_path / "agent.log",
                            {"sources.r1.spoolDir": str(spool), "sinks.k1.port": str(port),
                             "sinks.k1.hostname": "127.0.0.1"})
        lines = list(generate(LINES, 11, malformed_rate=0.02, start=int(time.time()) - 60,
                              span=60))
        counts = expected_counts(lines)
        os.rename(write_spool_file(staging, "access.log", lines), spool / "access.log")
        wait_until(lambda: ui_state(ui_port).get("totals", {}).get("records") == LINES, 60,
                   "every line to be counted", [consumer, agent])
        expected = [[url, n] for url, n in sorted(counts.items(), key=lambda kv: (-kv[1],
                                                                                   kv[0]))[:TOP]]
        asyncio.run(check_page(f"http://127.0.0.1:{ui_port}/", tmp_path, expected))
        state = ui_state(ui_port)
        assert state["totals"]["dropped"]["malformed"] == LINES - sum(counts.values())
    finally:
        if agent is not None:
            agent.stop()
        assert consumer.stop() == 0, consumer.tail()
