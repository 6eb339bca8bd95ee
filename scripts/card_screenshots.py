"""Screenshots of single cards as the /sandbox page shows them in a narrow EHR panel.

    .venv/bin/python scripts/card_screenshots.py OUT_DIR PREFIX [--width 320]

Sends three scenarios (a critical refill, a candidacy card, an order-sign draft above the
maximum dose) through the real /sandbox page in headless Chromium, each at its anchor day, and
saves the first card of each as OUT_DIR/PREFIX-{refill,candidacy,order}.png. The committee
compares these before and after a change to the card text (issue 16 kept its pairs in
/work/shots).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import expect, sync_playwright

from cds_service.app import create_app
from cds_service.config import Settings

SHOTS = {
    "refill": "refill-overdue",
    "candidacy": "candidacy-cp-baclofen-drowsiness",
    "order": "candidacy-order-sign-above-max-sandbox",
}
# The scenarios' anchor day: the sandbox moves a fixture's dates to the service's today.
ANCHOR = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("prefix")
    parser.add_argument("--width", type=int, default=320)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        settings = Settings(database_url=f"sqlite:///{tmp}/audit.sqlite",
                            spool_path=Path(tmp) / "audit.spool",
                            public_base_url=f"http://127.0.0.1:{port}")
        app = create_app(settings, clock=lambda: ANCHOR)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            _shoot(f"http://127.0.0.1:{port}", args.out, args.prefix, args.width)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _shoot(base: str, out: Path, prefix: str, width: int) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 900}, base_url=base)
        page.goto("/sandbox")
        expect(page.locator("body[data-ready=true]")).to_have_count(1)
        for name, scenario in SHOTS.items():
            page.get_by_label("Fixture (grouped by card family)").select_option(scenario)
            page.get_by_role("button", name="Send to the service").click()
            expect(page.locator("#status")).to_contain_text("HTTP 200")
            card = page.locator("article.card").first
            expect(card).to_be_visible()
            path = out / f"{prefix}-{name}.png"
            card.screenshot(path=str(path))
            print(f"wrote {path}")
        browser.close()


if __name__ == "__main__":
    main()
