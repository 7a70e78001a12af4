"""The console at `/console` in a real browser: figures, the live tail, log verify with a
checkpoint, projection rebuild to done, history with export, and what an auditor may not do."""
import json
import re
import time

from selenium.webdriver.common.by import By

from browser_session import OUTPUT, http, unlabelled_controls, wait_for


def append(server, publisher, events):
    status, body = http(server, "POST", "/v1/events", publisher, {"events": events})
    assert status == 201, body


def created(user, notification_id):
    return {"type": "notification.created", "user_id": user,
            "data": {"notification_id": notification_id, "title": f"{notification_id} for {user}"}}


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def state(driver, element_id):
    return driver.find_element(By.ID, element_id).get_attribute("data-state")


def test_console_as_admin(server, browser):
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    admin = server.token("admin", "root")
    append(server, publisher, [created("alice", f"a{i}") for i in range(30)] + [created("bob", "b0")])
    append(server, publisher, [{"type": "notification.read", "user_id": "alice", "data": {"notification_id": "a3"}}])

    driver.get(f"{server.base}/console#token={admin}")
    wait_for(lambda: text(driver, "stat-events") == "32", what="the event count")
    assert text(driver, "stat-users") == "2"
    stats = http(server, "GET", "/v1/stats", admin)[1]
    assert text(driver, "stat-ratio") == f"{stats['compression_ratio']:.2f} : 1"
    assert re.fullmatch(r"[0-9.]+ (B|KiB)", text(driver, "stat-raw"))

    # The tail shows what is appended from now on, newest first.
    wait_for(lambda: state(driver, "tail-status") == "live", what="the tail to go live")
    assert driver.find_elements(By.CSS_SELECTOR, "#tail tr") == []
    append(server, publisher, [created("carol", "c1"), created("carol", "c2")])
    wait_for(lambda: [row.get_attribute("data-seq") for row in driver.find_elements(By.CSS_SELECTOR, "#tail tr")]
             == ["34", "33"], what="two rows in the tail")

    # The chart takes a sample every 2 s: appends per second from the change in the event count,
    # and the live connections (this page's tail). Its label says the latest figures.
    def chart_label():
        return driver.find_element(By.ID, "chart").get_attribute("aria-label")

    wait_for(lambda: "live connections" in chart_label(), timeout=8, what="a chart sample")
    assert chart_label().endswith("and 1 live connections")
    append(server, publisher, [created("dave", f"d{i}") for i in range(40)])
    # 40 events in one interval of about 2 s: about 20 a second (earlier samples saw 0 or 1).
    rate = wait_for(lambda: (lambda r: r if r >= 4 else None)(
        float(re.match(r"Now ([0-9.]+) appends", chart_label()).group(1))), timeout=8, what="the 40 appends")
    assert rate <= 40, chart_label()

    # Verify, then check the head just seen as a checkpoint, then a checkpoint that does not hold.
    driver.find_element(By.ID, "verify").click()
    wait_for(lambda: state(driver, "verify-status") == "done", what="verify to finish")
    verified = http(server, "GET", "/v1/log/verify", admin)[1]
    result = text(driver, "verify-result")
    assert verified["head_hash"] in result and "ok: the chain and every block check out" in result
    driver.find_element(By.ID, "use-head").click()
    assert driver.find_element(By.ID, "checkpoint-hash").get_attribute("value") == verified["head_hash"]
    driver.find_element(By.ID, "verify").click()
    wait_for(lambda: "Checkpoint\nholds" in text(driver, "verify-result"), what="the checkpoint to hold")
    hash_field = driver.find_element(By.ID, "checkpoint-hash")
    hash_field.clear()
    hash_field.send_keys(("0" if verified["head_hash"][0] != "0" else "1") + verified["head_hash"][1:])
    driver.find_element(By.ID, "verify").click()
    wait_for(lambda: "does NOT hold" in text(driver, "verify-result"), what="the checkpoint to fail")
    # A malformed field: the server's own words, as text.
    browser.expect_error(r"/v1/log/verify\?seq=74&hash=xyz - Failed to load resource: .* status of 400")
    hash_field.clear()
    hash_field.send_keys("xyz")
    driver.find_element(By.ID, "verify").click()
    wait_for(lambda: text(driver, "verify-error") == "bad_request: hash must be 64 lowercase hex digits",
             what="the server's error")

    # Rebuild runs to done, the bar full; the comparison with a fresh rebuild matches.
    driver.find_element(By.ID, "rebuild").click()
    wait_for(lambda: state(driver, "rebuild-state") == "done", timeout=30, what="the rebuild to be done")
    assert text(driver, "rebuild-state").startswith("done: 74 events")
    progress = driver.find_element(By.ID, "rebuild-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "1000"
    assert http(server, "GET", "/v1/admin/projections/rebuild", admin)[1]["job"]["state"] == "done"
    driver.find_element(By.ID, "projection-verify").click()
    wait_for(lambda: "matches a fresh rebuild (4 users checked)" in text(driver, "projection-result"),
             what="the projection comparison")

    # History: bob's and carol's created events, then the same filter exported as NDJSON.
    driver.find_element(By.CSS_SELECTOR, '#history-form input[value="notification.created"]').click()
    user_field = driver.find_element(By.ID, "history-user")
    user_field.send_keys("carol")
    driver.find_element(By.ID, "history-search").click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#history tr")) == 2, what="carol's two events")
    # A time range: from tomorrow on, nothing; up to tomorrow, both again.
    set_local_time = """
        const d = new Date(Date.now() + 86400000);
        const pad = (n) => String(n).padStart(2, "0");
        arguments[0].value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T`
            + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;"""
    driver.execute_script(set_local_time, driver.find_element(By.ID, "history-since"))
    driver.find_element(By.ID, "history-search").click()
    wait_for(lambda: text(driver, "history-count") == "0 events shown", what="nothing from tomorrow on")
    assert "since=" in text(driver, "export-command")
    driver.execute_script("arguments[0].value = ''", driver.find_element(By.ID, "history-since"))
    driver.execute_script(set_local_time, driver.find_element(By.ID, "history-until"))
    driver.find_element(By.ID, "history-search").click()
    wait_for(lambda: text(driver, "history-count") == "2 events shown", what="both up to tomorrow")
    assert "until=" in text(driver, "export-command")
    assert "user_id=carol" in text(driver, "export-command")
    assert "type=notification.created" in text(driver, "export-command")
    driver.find_element(By.ID, "history-export").click()
    wait_for(lambda: text(driver, "history-count").startswith("Exported 2 events"), what="the export")
    exported = wait_for(lambda: [p for p in browser.downloads.glob("*.ndjson")], what="the downloaded file")
    lines = [json.loads(line) for line in exported[0].read_text().splitlines()]
    assert [(e["seq"], e["user_id"], e["data"]["notification_id"]) for e in lines] == [
        (33, "carol", "c1"), (34, "carol", "c2")]

    assert unlabelled_controls(driver) == []
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(OUTPUT / "console.png"))
    # A full-page picture too: the console is taller than the window.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, height + 120)
    time.sleep(0.3)
    driver.save_screenshot(str(OUTPUT / "console-full.png"))


def test_console_as_auditor_reads_but_may_not_rebuild(server, browser):
    driver = browser.driver
    auditor = server.token("auditor", "audit")
    driver.get(f"{server.base}/console")
    field = wait_for(lambda: driver.find_element(By.ID, "token"), what="the sign-in form")
    field.send_keys(server.token("user", "alice"))
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait_for(lambda: "user role" in text(driver, "sign-in-error"), what="the role refused")
    field.clear()
    field.send_keys(auditor)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait_for(lambda: text(driver, "stat-events") == "0", what="the figures of an empty store")
    assert text(driver, "who") == "Signed in as audit (auditor)"
    assert driver.find_element(By.ID, "rebuild").is_enabled() is False
    assert "admin token" in text(driver, "rebuild-state")
    driver.find_element(By.ID, "verify").click()
    wait_for(lambda: "Head seq\n0" in text(driver, "verify-result"), what="verify of an empty log")
    assert "0" * 64 in text(driver, "verify-result")
