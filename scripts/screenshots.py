"""Screenshots of the web workbench for the README (docs/screenshots/*.png), taken by the browser tests' own
setup (tests/web/webtools.py: headless Debian Chromium through Playwright, a real ``techmatch serve``).

    python scripts/screenshots.py                       # the small demo (2,000 results) in var/screenshots
    python scripts/screenshots.py --size tiny --out /tmp/shots
    python scripts/screenshots.py --only admin          # the admin pages, the audit page, the password page (13-16)
    python scripts/screenshots.py --only review         # only the review campaign's pages (17, 18)

The demo home is loaded once (load-demo is idempotent; the embedding cache makes a rerun quick).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))

from webtools import (  # noqa: E402
    admin_tour,
    launch_browser,
    prepare_demo_home,
    review_tour,
    start_server,
    stop_server,
    tour,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "screenshots", help="demo data folder")
    parser.add_argument("--size", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", choices=["all", "pages", "admin", "review"], default="all",
                        help="the work pages (01-12), the admin and audit pages (13-16), the review campaign's"
                             " pages (17, 18), or all")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    logins = prepare_demo_home(args.home, args.size)
    proc, base = start_server(args.home)
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": logins.api_key}, timeout=120) as api:
            need = api.get("/needs", params={"enterprise": logins.enterprise_id, "limit": 1}).json()["items"][0]
            result_id = api.get(f"/needs/{need['id']}/matches", params={"k": 1}).json()["matches"][0]["id"]
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            try:
                shots = []
                if args.only in ("all", "pages"):
                    shots += tour(browser, base, logins, args.out, need["id"], result_id, shortlist_top=500)
                if args.only in ("all", "admin"):
                    shots += admin_tour(browser, base, logins, args.out).shots
                if args.only in ("all", "review"):
                    shots += review_tour(browser, base, logins, args.out)
            finally:
                browser.close()
    finally:
        stop_server(proc)
    for name, status in shots:
        print(f"{status}  {args.out / (name + '.png')}")


if __name__ == "__main__":
    main()
