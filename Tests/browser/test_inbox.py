"""The inbox at `/` in a real browser: live delivery, marking read, resuming after a reload and
after the server crashes and comes back, a replaced store, two tabs in step, and refused tokens
shown as text."""
import pathlib
import shutil

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from browser_session import OUTPUT, http, low_contrast_text, unlabelled_controls, wait_for
from tidings_process import Server


def create(server, publisher, notification_id, title):
    status, body = http(server, "POST", "/v1/events", publisher, {
        "type": "notification.created", "user_id": "alice",
        "data": {"notification_id": notification_id, "title": title, "kind": "test"}})
    assert status == 201, body


def items(driver):
    """The list as the page shows it: (id, read) pairs, top to bottom."""
    return [(row.get_attribute("data-id"), "read" in row.get_attribute("class").split())
            for row in driver.find_elements(By.CSS_SELECTOR, "#list li")]


def badge(driver):
    element = driver.find_element(By.ID, "badge")
    return int(element.get_attribute("data-count") or "0"), element.is_displayed()


def caught_up(driver):
    status = driver.find_element(By.ID, "status")
    return status.get_attribute("data-state") == "caught_up" and status


def unread_on_server(server, alice):
    return http(server, "GET", "/v1/users/alice/unread", alice)[1]["unread_count"]


def test_live_read_reload_and_server_restart(server, browser, store_directory):
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    create(server, publisher, "n1", "First")
    create(server, publisher, "n2", "Second")

    # Signed in by the address's fragment, which the page takes out of the address at once.
    driver.get(f"{server.base}/#token={alice}")
    wait_for(lambda: caught_up(driver), what="the first catch-up")
    assert "token" not in driver.current_url
    # A first visit reads the list and streams from its head: nothing to replay.
    assert driver.find_element(By.ID, "status").get_attribute("data-replayed") == "0"
    wait_for(lambda: items(driver) == [("n2", False), ("n1", False)], what="two unread, newest first")
    assert badge(driver) == (2, True)

    # A notification appended over HTTP arrives live and the badge follows.
    create(server, publisher, "n3", "Third")
    wait_for(lambda: items(driver)[:1] == [("n3", False)], what="n3 live")
    wait_for(lambda: badge(driver) == (3, True), what="badge 3")
    assert unlabelled_controls(driver) == []

    # Clicking an item marks it read: the read event comes back over the stream.
    driver.find_element(By.CSS_SELECTOR, '#list li[data-id="n3"] button.item-main').click()
    wait_for(lambda: items(driver) == [("n3", True), ("n2", False), ("n1", False)], what="n3 read")
    wait_for(lambda: badge(driver) == (2, True), what="badge 2")
    assert unread_on_server(server, alice) == 2

    # A reload resumes from the saved cursor: nothing replayed, nothing lost, nothing twice.
    driver.refresh()
    wait_for(lambda: caught_up(driver), what="catch-up after the reload")
    assert driver.find_element(By.ID, "status").get_attribute("data-replayed") == "0"
    assert items(driver) == [("n3", True), ("n2", False), ("n1", False)]
    assert badge(driver) == (2, True)
    # What it resumed from: the head of alice's stream, kept in localStorage beside the list.
    saved = driver.execute_script("return JSON.parse(localStorage.getItem('tidings.inbox.state.alice'))")
    assert saved["cursor"] == http(server, "GET", "/v1/users/alice/unread", alice)[1]["cursor"]
    assert [item["id"] for item in saved["items"]] == ["n3", "n2", "n1"]

    # Away from the page, two things happen; coming back replays exactly those two events.
    driver.get("about:blank")
    create(server, publisher, "n4", "Fourth")
    assert http(server, "POST", "/v1/users/alice/read", alice, {"notification_ids": ["n1"]})[0] == 200
    driver.get(f"{server.base}/")
    wait_for(lambda: caught_up(driver), what="catch-up after coming back")
    assert driver.find_element(By.ID, "status").get_attribute("data-replayed") == "2"
    assert items(driver) == [("n4", False), ("n3", True), ("n2", False), ("n1", True)]
    assert badge(driver) == (2, True)

    # The server crashes: the page says it is reconnecting, backs off, and when the server is
    # back on the same port resumes where it was.
    port = server.port
    browser.expect_error(rf"ws://127\.0\.0\.1:{port}/v1/stream.*(failed|ERR_CONNECTION_REFUSED)")
    server.kill()
    wait_for(lambda: driver.find_element(By.ID, "status").get_attribute("data-state") == "reconnecting",
             what="the reconnecting state")
    assert "Reconnecting" in driver.find_element(By.ID, "status").text
    # The waits between tries double (with jitter, each in the upper half of its ceiling):
    # 0.25-0.5 s, then 0.5-1 s, then 1-2 s.
    delays = []

    def three_delays():
        delay = int(driver.find_element(By.ID, "status").get_attribute("data-delay-ms"))
        if delay and (not delays or delays[-1] != delay):
            delays.append(delay)
        return len(delays) >= 3

    wait_for(three_delays, timeout=10, what="three tries")
    for attempt, delay in enumerate(delays[:3]):
        assert 250 * 2**attempt <= delay <= 500 * 2**attempt, delays
    restarted = Server(store_directory, port=port)
    try:
        wait_for(lambda: caught_up(driver), timeout=30, what="catch-up after the restart")
        create(restarted, publisher, "n5", "Fifth")
        wait_for(lambda: items(driver)[:1] == [("n5", False)], what="n5 after the restart")
        wait_for(lambda: badge(driver) == (3, True), what="badge 3 after the restart")
        assert [item_id for item_id, _ in items(driver)] == ["n5", "n4", "n3", "n2", "n1"]

        # The keyboard alone: Tab onto the first item and press Enter.
        first = driver.find_element(By.CSS_SELECTOR, '#list li[data-id="n5"] button.item-main')
        driver.execute_script("arguments[0].focus()", first)
        first.send_keys(Keys.ENTER)
        wait_for(lambda: badge(driver) == (2, True), what="badge 2 after Enter")
        driver.save_screenshot(str(OUTPUT / "inbox.png"))

        # Mark all read empties the badge, here and on the server.
        driver.find_element(By.ID, "mark-all").click()
        wait_for(lambda: badge(driver) == (0, False), what="no badge")
        assert all(read for _, read in items(driver))
        assert unread_on_server(restarted, alice) == 0
        driver.save_screenshot(str(OUTPUT / "inbox-all-read.png"))
    finally:
        restarted.stop()


def test_two_tabs_of_one_user_stay_in_step(server, browser):
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    create(server, publisher, "a", "Alpha")
    driver.get(f"{server.base}/#token={alice}")
    wait_for(lambda: caught_up(driver), what="the first tab")
    first = driver.current_window_handle
    driver.switch_to.new_window("window")
    driver.get(f"{server.base}/")  # signed in by the token the first tab kept
    wait_for(lambda: caught_up(driver), what="the second tab")
    second = driver.current_window_handle

    create(server, publisher, "b", "Beta")
    wait_for(lambda: items(driver) == [("b", False), ("a", False)], what="b in the second tab")
    driver.find_element(By.CSS_SELECTOR, '#list li[data-id="a"] button.item-main').click()
    wait_for(lambda: badge(driver) == (1, True), what="badge 1 in the second tab")

    driver.switch_to.window(first)
    wait_for(lambda: items(driver) == [("b", False), ("a", True)], what="the first tab in step")
    wait_for(lambda: badge(driver) == (1, True), what="badge 1 in the first tab")

    # Signing out in one tab signs out the other.
    driver.find_element(By.ID, "sign-out").click()
    driver.switch_to.window(second)
    wait_for(lambda: driver.find_element(By.ID, "sign-in").is_displayed(), what="the second tab signed out")
    assert "another tab" in driver.find_element(By.ID, "sign-in-error").text


def test_refused_tokens_are_explained_and_change_nothing(server, browser):
    driver = browser.driver
    browser.expect_error(r"/unread\?limit=1 - Failed to load resource: .* status of 401")
    driver.get(f"{server.base}/")
    wait_for(lambda: driver.find_element(By.ID, "sign-in").is_displayed(), what="the sign-in form")
    assert unlabelled_controls(driver) == []

    def sign_in_with(token):
        field = driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)
        field.send_keys(Keys.TAB)  # onto the button, by keyboard
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        return wait_for(lambda: driver.find_element(By.ID, "sign-in-error").text, what="an error under the form")

    assert "not a JWT" in sign_in_with("not-a-token")
    assert "publisher role" in sign_in_with(server.token("publisher", "backend"))
    forged = server.token("user", "alice")[:-4] + "AAAA"
    assert sign_in_with(forged) == "unauthorized: missing or invalid bearer token"
    assert driver.find_element(By.ID, "inbox").is_displayed() is False
    assert driver.execute_script("return localStorage.length") == 0


def test_reset_reloads_the_list_from_another_store(server, browser, tmp_path):
    """The store behind the address is replaced (a restore, say): the saved cursor names another
    epoch, the server answers `reset`, and the page reloads the list from the new store."""
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    create(server, publisher, "old-1", "From the old store")
    driver.get(f"{server.base}/#token={server.token('user', 'alice')}")
    wait_for(lambda: items(driver) == [("old-1", False)], what="the old store's list")
    wait_for(lambda: caught_up(driver), what="the first catch-up")

    # A second store that shares the first one's signing secret, so the page's token stays good.
    other = tmp_path / "other-store"
    other.mkdir()
    shutil.copy(pathlib.Path(server.directory) / "jwt-secret", other / "jwt-secret")
    # Its events are written before it takes the page's address, so the page's first contact
    # with it is the reset, whenever the page reconnects.
    preparing = Server(str(other))
    try:
        create(preparing, publisher, "new-1", "Kept unread")
        create(preparing, publisher, "new-2", "Read before the page looks")
        alice = preparing.token("user", "alice")
        assert http(preparing, "POST", "/v1/users/alice/read", alice, {"notification_ids": ["new-2"]})[0] == 200
    finally:
        preparing.stop()
    port = server.port
    browser.expect_error(rf"ws://127\.0\.0\.1:{port}/v1/stream.*(failed|ERR_CONNECTION_REFUSED)")
    server.stop()
    replaced = Server(str(other), port=port)
    try:
        wait_for(lambda: items(driver) == [("new-2", True), ("new-1", False)], timeout=30,
                 what="the reloaded list, each with its state")
        wait_for(lambda: caught_up(driver), what="live again after the reset")
        assert badge(driver) == (1, True)
        create(replaced, publisher, "new-3", "Live after the reset")
        wait_for(lambda: items(driver) == [("new-3", False), ("new-2", True), ("new-1", False)], what="new-3 live")
        wait_for(lambda: badge(driver) == (2, True), what="badge 2")
    finally:
        replaced.stop()


def test_a_first_visit_loads_the_newest_page_of_the_list(server, browser):
    """A user with more notifications than the page keeps: the first visit shows the newest 200
    with their state, replays nothing, counts every unread one, and goes on live from there."""
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    events = [{"type": "notification.created", "user_id": "alice",
               "data": {"notification_id": f"n{i}", "title": f"Number {i}"}} for i in range(250)]
    assert http(server, "POST", "/v1/events", publisher, {"events": events})[0] == 201
    read = [f"n{i}" for i in range(0, 250, 10)]
    assert http(server, "POST", "/v1/users/alice/read", alice, {"notification_ids": read})[0] == 200

    driver.get(f"{server.base}/#token={alice}")
    wait_for(lambda: caught_up(driver), what="the first catch-up")
    assert driver.find_element(By.ID, "status").get_attribute("data-replayed") == "0"
    expected = [(f"n{i}", i % 10 == 0) for i in range(249, 49, -1)]
    wait_for(lambda: items(driver) == expected, what="the newest 200, each with its state")
    assert badge(driver) == (225, True)
    create(server, publisher, "n250", "Live after the list")
    wait_for(lambda: items(driver)[:2] == [("n250", False), ("n249", False)], what="n250 live")
    wait_for(lambda: badge(driver) == (226, True), what="badge 226")


def test_hostile_content_is_shown_as_text(server, browser):
    """Titles and bodies are text, never markup; only http(s) links become links."""
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    markup = '<img src=x onerror="document.title=\'owned\'"><b>bold</b>'
    for notification_id, link in [("script", "javascript:document.title='owned'"), ("web", "https://example.com/x")]:
        status, body = http(server, "POST", "/v1/events", publisher, {
            "type": "notification.created", "user_id": "alice",
            "data": {"notification_id": notification_id, "title": markup, "body": markup, "link": link}})
        assert status == 201, body
    driver.get(f"{server.base}/#token={server.token('user', 'alice')}")
    wait_for(lambda: len(items(driver)) == 2, what="both notifications")
    for row in driver.find_elements(By.CSS_SELECTOR, "#list li"):
        assert row.find_element(By.CSS_SELECTOR, ".item-title").text == markup
        assert row.find_elements(By.CSS_SELECTOR, "img, b") == []
    assert driver.find_elements(By.CSS_SELECTOR, '#list li[data-id="script"] a') == []
    links = driver.find_elements(By.CSS_SELECTOR, '#list li[data-id="web"] a')
    assert [link.get_attribute("href") for link in links] == ["https://example.com/x"]
    assert links[0].get_attribute("rel") == "noopener noreferrer"
    assert "owned" not in driver.title


def test_text_is_readable_in_light_and_dark(server, browser):
    """Every piece of text meets WCAG's 4.5:1 contrast, in both color schemes, on both pages."""
    driver = browser.driver
    publisher = server.token("publisher", "backend")
    create(server, publisher, "one", "Unread")
    create(server, publisher, "two", "Read")
    alice = server.token("user", "alice")
    assert http(server, "POST", "/v1/users/alice/read", alice, {"notification_ids": ["two"]})[0] == 200
    for scheme in ["light", "dark"]:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        driver.get(f"{server.base}/#token={alice}")
        wait_for(lambda: caught_up(driver) and len(items(driver)) == 2, what=f"the inbox ({scheme})")
        assert low_contrast_text(driver) == [], scheme
        driver.get(f"{server.base}/console#token={server.token('admin', 'root')}")
        wait_for(lambda: driver.find_element(By.ID, "stat-events").text == "3", what=f"the console ({scheme})")
        assert low_contrast_text(driver) == [], scheme
