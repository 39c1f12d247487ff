"""What the browser tests and ``scripts/screenshots.py`` share: a demo home with logins, a real
``techmatch serve`` on a free port, headless Debian Chromium driven by Playwright, and a tour of the pages.

Playwright is pointed at /usr/bin/chromium (its own browser downloads are not used); each launch gets a
fresh temporary profile (Playwright's own --user-data-dir) and the flags Chromium needs as root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM = Path(os.environ.get("TECHMATCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=zh-CN"]
VIEWPORT = {"width": 1360, "height": 900}


@dataclass(frozen=True)
class Logins:
    """The demo accounts of a home: a broker, an enterprise user (bound to ``enterprise``) and a broker API key."""

    broker: tuple[str, str]
    enterprise: tuple[str, str]
    enterprise_id: str
    api_key: str


DEMO_BROKER = ("demo-broker", "demo-broker-2026")
DEMO_ENTERPRISE = ("demo-enterprise", "demo-enterprise-2026")
DEMO_ENTERPRISE_ID = "E003"  # has needs in every demo size (tiny 1, small 3, full 25)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str) -> str:
    """Run a techmatch command in this process (typer's runner); its output, or AssertionError with it."""
    from typer.testing import CliRunner

    from techmatch.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exit_code != 0:
        raise AssertionError(f"techmatch {' '.join(args)} failed ({result.exit_code}): {result.output}"
                             f"{result.exception!r}")
    return result.output


def prepare_demo_home(home: Path, size: str = "tiny") -> Logins:
    """Load the demo world into ``home`` and create the demo logins (all idempotent), as scripts/demo.sh does."""
    cli("load-demo", "--size", size, "--home", str(home))
    cli("users", "create", "--username", DEMO_BROKER[0], "--password", DEMO_BROKER[1], "--role", "broker",
        "--name", "王经理", "--exist-ok", "--home", str(home))
    cli("users", "set-admin", "--username", DEMO_BROKER[0], "--home", str(home))  # as scripts/demo.sh does
    cli("users", "create", "--username", DEMO_ENTERPRISE[0], "--password", DEMO_ENTERPRISE[1], "--role", "enterprise",
        "--enterprise", DEMO_ENTERPRISE_ID, "--name", "通明航空 李工", "--exist-ok", "--home", str(home))
    key = cli("keys", "create", "--role", "broker", "--label", "web tests", "--home", str(home)).split()[-1]
    return Logins(DEMO_BROKER, DEMO_ENTERPRISE, DEMO_ENTERPRISE_ID, key)


def start_server(home: Path, env: dict[str, str] | None = None, timeout: float = 240.0) -> tuple[subprocess.Popen, str]:
    """``techmatch serve`` over ``home`` on a free port, once it answers /ready: the process and its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "techmatch", "serve", "--home", str(home), "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"techmatch serve exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise AssertionError("techmatch serve did not become ready in time")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# Every page the browser opens reports a Content-Security-Policy violation to the console: Chromium's own
# "Refused to ... Content Security Policy" message, and this listener's line for each securitypolicyviolation.
CSP_LISTENER = """document.addEventListener('securitypolicyviolation', (e) => console.error(
  'Content Security Policy violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
  + ' at ' + e.sourceFile + ':' + e.lineNumber));"""


class WatchedBrowser:
    """A Playwright Browser whose every new context records Content-Security-Policy violations in
    ``violations`` (the browser fixture fails the test that caused any); the rest is the Browser's."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.violations: list[str] = []

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.add_init_script(CSP_LISTENER)

        def on_console(message) -> None:
            if "Content Security Policy" in message.text:
                self.violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

        context.on("console", on_console)
        return context

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


def launch_browser(playwright) -> WatchedBrowser:
    return WatchedBrowser(playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                     args=CHROMIUM_FLAGS))


def sign_in(page, base: str, login: tuple[str, str]) -> None:
    page.goto(f"{base}/web/login")
    page.fill("input[name=username]", login[0])
    page.fill("input[name=password]", login[1])
    page.click("form.login-form button[type=submit]")
    page.wait_for_load_state()


BAD_CSV = ("id,title,abstract,field,trl,ip_status\n"
           "R900001,一种固态电解质薄膜的制备方法,通过溅射沉积制备致密固态电解质薄膜,新能源,5,pending\n"
           "R900002,,缺少标题的一行,新能源,4,none\n"
           "R900003,高精度光纤光栅温度传感器,用于变电站温度监测,电力装备,12,granted\n"
           "R900001,重复编号的成果,与第 2 行编号相同,新能源,3,none\n")


def tour(browser, base: str, logins: Logins, out: Path, need_id: str, result_id: str,
         shortlist_top: int = 100) -> list[tuple[str, int]]:
    """Visit the main pages as each role and screenshot them into ``out``: (file name, HTTP status) per page."""
    out.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, int]] = []

    def shot(page, name: str, status: int, full: bool = True, height: int | None = None) -> None:
        if height is not None:  # a taller window from the top: the page's head and its first item together
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(out / f"{name}.png"), full_page=full)
        page.set_viewport_size(VIEWPORT)
        shots.append((name, status))

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    response = page.goto(f"{base}/web/login")
    shot(page, "01-login", response.status, full=False)
    sign_in(page, base, logins.enterprise)
    shot(page, "02-enterprise-needs", 200)
    response = page.goto(f"{base}/web/needs/new")
    shot(page, "03-enterprise-new-need", response.status)
    page.goto(f"{base}/web/needs")
    page.click("table a >> nth=0")
    page.wait_for_selector("[data-testid=match]")
    first = page.locator("[data-testid=match]").first
    if "已标记" not in first.locator("form.interest button").inner_text():
        first.locator("form.interest button").click()
        first.locator("button.marked").wait_for()
    shot(page, "04-enterprise-matches", 200, full=False, height=1500)
    context.close()

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, logins.broker)
    response = page.goto(f"{base}/web/needs/{need_id}")
    first = page.locator("[data-testid=match]").first
    first.locator("input[name=note]").fill("已电话沟通，企业希望下周看样机")
    first.locator("button[value=contacted]").click()
    first.locator(".latest.saved").wait_for()
    shot(page, "06-broker-match-feedback", response.status, full=False, height=1500)
    response = page.goto(f"{base}/web/results?trl_min=5&ip_status=granted")
    shot(page, "07-broker-results-filtered", response.status, full=False)
    response = page.goto(f"{base}/web/results/{result_id}")
    shot(page, "08-broker-result-push-list", response.status)
    response = page.goto(f"{base}/web/shortlist")
    page.fill("input[name=top]", str(shortlist_top))
    page.click("form.inline-form button[type=submit]")
    page.wait_for_selector("[data-testid=job] .progress")
    page.wait_for_timeout(1200)  # a poll or two: the bar shows its time and steps
    shot(page, "09-broker-shortlist-progress", 200, full=False)
    page.wait_for_selector(".job-running, .job-queued", state="detached", timeout=900_000)  # done: the page reloads
    page.wait_for_selector("table[data-testid=shortlist]")
    shot(page, "10-broker-shortlist", 200, full=False)
    page.goto(f"{base}/web/upload")
    bad = out.parent / "results-with-errors.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    page.set_input_files("input[type=file]", str(bad))
    page.click("form.form button[type=submit]")
    page.wait_for_selector("[data-testid=upload-errors]")
    bad.unlink()
    shot(page, "11-broker-upload-report", 422)
    response = page.goto(f"{base}/web/feedback")
    shot(page, "12-broker-feedback", response.status)
    response = page.goto(f"{base}/web/dashboard")  # last: with the shortlist, the feedback and the marks above
    shot(page, "05-broker-dashboard", response.status)
    context.close()
    return shots


@dataclass(frozen=True)
class AdminTour:
    """What the admin tour made: the new user's name and temporary password, and the API key it revoked."""

    username: str
    temporary_password: str
    revoked_key: str
    shots: list[tuple[str, int]]


NEW_PASSWORD = "qi-gong-materials-2026"


def admin_tour(browser, base: str, logins: Logins, out: Path) -> AdminTour:
    """As the demo admin: open an enterprise and a user for it, create and revoke an API key; as that user: sign in
    with the temporary password and change it (a weak one first); as the admin: the audit page. Screenshots of
    each admin page into ``out`` (13-16)."""
    out.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, int]] = []

    def shot(page, name: str, status: int) -> None:
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        shots.append((name, status))

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, logins.broker)
    page.click("nav.nav >> text=账号管理")
    page.wait_for_selector("[data-testid=users]")
    made_before = page.locator("tr[data-enterprise^='E77']").count()  # a second tour over one home: new names
    enterprise, username = f"E77{7 + made_before}", f"qi-e77{7 + made_before}"
    form = page.locator("form[data-testid=new-enterprise]")
    form.locator("input[name=name]").fill("七号新材料科技有限公司")
    form.locator("input[name=enterprise_id]").fill(enterprise)
    form.locator("input[name=industry]").fill("新材料")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=admin-done]")
    form = page.locator("form[data-testid=new-user]")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=display_name]").fill("七号新材料 齐工")
    form.locator("select[name=role]").select_option("enterprise")
    form.locator("select[name=enterprise]").select_option(enterprise)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=secret]")
    temporary = page.locator("[data-testid=secret]").inner_text().strip()
    shot(page, "13-admin-users", 200)

    page.click("nav.tabs >> text=API 密钥")
    form = page.locator("form[data-testid=new-key]")
    form.locator("select[name=role]").select_option("enterprise")
    form.locator("select[name=enterprise]").select_option(enterprise)
    form.locator("input[name=label]").fill("七号新材料 ERP 对接（试用）")
    form.locator("input[name=expires_days]").fill("30")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=secret]")
    token = page.locator("[data-testid=secret]").inner_text().strip()
    key_id = token.split("_")[1]
    httpx.get(f"{base}/needs", headers={"X-API-Key": token}, timeout=30)  # used once: the page shows when
    page.goto(f"{base}/web/admin/keys")
    page.locator(f"tr[data-key='{key_id}'] button[type=submit]").click()
    page.wait_for_selector(f"tr[data-key='{key_id}'] .badge.off")
    shot(page, "14-admin-keys", 200)
    context.close()

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, (username, temporary))
    page.click(".who a.name")
    page.wait_for_selector("[data-testid=password-form]")
    for name, value in (("current", temporary), ("new", "1234567890"), ("confirm", "1234567890")):
        page.fill(f"input[name={name}]", value)
    page.click("form[data-testid=password-form] button[type=submit]")
    page.wait_for_selector("[data-testid=password-error]")
    shot(page, "16-password-change", 422)
    for name, value in (("current", temporary), ("new", NEW_PASSWORD), ("confirm", NEW_PASSWORD)):
        page.fill(f"input[name={name}]", value)
    page.click("form[data-testid=password-form] button[type=submit]")
    page.wait_for_selector(".notice.ok")
    context.close()

    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, logins.broker)
    page.click("nav.nav >> text=审计日志")
    page.wait_for_selector("[data-testid=audit]")
    shot(page, "15-audit", 200)
    context.close()
    return AdminTour(username, temporary, key_id, shots)
def review_tour(browser, base: str, logins: Logins, out: Path, reads: int = 60) -> list[tuple[str, int]]:
    """A review campaign over every result, ``reads`` decisions made through the API by a rule (可转化 when TRL >= 6
    and the patent is granted), then the review page and the campaign's progress screenshotted into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=base, headers={"X-API-Key": logins.api_key}, timeout=120) as api:
        campaign = api.post("/campaigns", json={"name": "2026 年度成果转化评审", "scope": "all"}).json()["id"]
        done = 0
        deadline = time.monotonic() + 600
        while done < reads and time.monotonic() < deadline:
            items = api.post(f"/campaigns/{campaign}/next", params={"k": 5}).json()["items"]
            if not items:
                time.sleep(0.3)  # the model's first build
                continue
            for item in items[:reads - done]:
                good = (item.get("trl") or 0) >= 6 and item.get("ip_status") == "granted"
                api.post(f"/campaigns/{campaign}/decisions", json={
                    "result_id": item["id"], "decision": "transferable" if good else "not_transferable",
                    "note": "专利已授权，样机成熟" if good and done % 4 == 0 else ""})
                done += 1
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, logins.broker)
    shots = []
    response = page.goto(f"{base}/web/campaigns/{campaign}/review")
    page.wait_for_selector("[data-testid=review-result]", timeout=120_000)
    page.locator("[data-testid=note]").fill("企业已试用两个月，效果稳定")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1250})
    page.screenshot(path=str(out / "17-broker-review.png"), full_page=False)
    shots.append(("17-broker-review", response.status))
    page.set_viewport_size(VIEWPORT)
    response = page.goto(f"{base}/web/campaigns/{campaign}")
    page.wait_for_selector("[data-testid=recall]", timeout=120_000)
    page.screenshot(path=str(out / "18-broker-campaign-progress.png"), full_page=False)
    shots.append(("18-broker-campaign-progress", response.status))
    context.close()
    return shots
