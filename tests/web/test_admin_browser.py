"""The admin pages and the password change in a real browser (Chromium, a real ``techmatch serve`` over the tiny
demo): the demo admin opens an enterprise and a user for it (a temporary password shown once), creates an API key
for it and revokes it; the new user signs in, is refused a weak new password and sets a strong one; the audit page
lists it all and filters it; an enterprise user cannot open the admin pages (the authorisation matrix covers
every page for every role)."""

from __future__ import annotations

import httpx
import pytest
from webtools import NEW_PASSWORD, admin_tour, sign_in

pytestmark = pytest.mark.browser


def test_admin_pages_and_the_password_change(site, browser, page, tmp_path):
    tour = admin_tour(browser, site.base, site.logins, tmp_path / "shots")
    assert [status for _, status in tour.shots] == [200, 200, 422, 200]
    # the revoked key is refused; the temporary password is gone, the new one signs in
    with httpx.Client(base_url=site.base, timeout=30) as api:
        key = api.get("/needs", headers={"X-API-Key": f"tm_{tour.revoked_key}_x"})
        assert key.status_code == 401
    sign_in(page, site.base, (tour.username, tour.temporary_password))
    assert "/web/login" in page.url and "用户名或密码不正确" in page.locator("form.login-form .notice.bad").inner_text()
    sign_in(page, site.base, (tour.username, NEW_PASSWORD))
    assert page.url.endswith("/web/needs")
    assert "账号管理" not in page.locator("nav.nav").inner_text()  # an enterprise user: no admin links ...
    assert page.goto(f"{site.base}/web/admin/users").status == 403  # ... and no admin page
    page.goto(f"{site.base}/web/audit")
    own = page.locator("[data-testid=audit] tbody tr")  # its own entries only
    assert own.count() >= 2 and tour.username in page.locator("[data-testid=audit]").inner_text()
    assert "demo-enterprise" not in page.content()
    page.click(".who form button[type=submit]")  # sign out

    sign_in(page, site.base, site.logins.broker)
    page.goto(f"{site.base}/web/audit")
    page.select_option("select[name=action]", "key.revoked")
    page.click("form[data-testid=audit-filters] button[type=submit]")
    page.wait_for_url("**action=key.revoked**")
    rows = page.locator("[data-testid=audit] tbody tr")
    assert rows.count() >= 1 and tour.revoked_key in rows.first.inner_text()
    assert {r.get_attribute("data-action") for r in rows.all()} == {"key.revoked"}
    with page.expect_download() as download:
        page.click("text=下载 CSV")
    assert "key.revoked" in download.value.path().read_text(encoding="utf-8-sig")
