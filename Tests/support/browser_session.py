"""Headless Chromium driven by Selenium, and the small helpers the browser tests share."""
import json
import re
import shutil
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tidings_process import ROOT

OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


class Browser:
    """One headless Chromium. `console_errors()` drains what its console logged as errors, less
    the lines a test said to expect with `expect_error`."""

    def __init__(self, downloads):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--disable-gpu", "--no-first-run", "--disable-extensions"]:
            options.add_argument(argument)
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads), "download.prompt_for_download": False})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.downloads = downloads
        self.errors = []
        self.expected = []

    def expect_error(self, pattern):
        """Chromium logs every answer of 4xx and every refused socket; a test that causes one on
        purpose names it here."""
        self.expected.append(re.compile(pattern))

    def console_errors(self):
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE":
                self.errors.append(entry["message"])
        return [line for line in self.errors if not any(p.search(line) for p in self.expected)]

    def quit(self):
        self.driver.quit()



def wait_for(condition, timeout=10, what="the condition"):
    """Polls `condition` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as error:  # an element not there yet, a stale one: look again
            last = error
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def http(server, method, path, token, body=None):
    """Calls the API; returns (status, parsed JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def unlabelled_controls(driver):
    """The visible controls a screen reader could not name: inputs without a label, buttons and
    links without text, images without a label. Each is described by its tag and id."""
    return driver.execute_script("""
        const named = (el) => (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
            || el.getAttribute("aria-labelledby") || el.getAttribute("title")
            || (["BUTTON", "A"].includes(el.tagName) && el.textContent.trim() !== "")
            || (el.tagName === "IMG" && el.hasAttribute("alt"));
        const controls = document.querySelectorAll("input, textarea, select, button, a[href], canvas, img, progress");
        return [...controls].filter((el) => el.offsetParent !== null && !named(el))
            .map((el) => `${el.tagName.toLowerCase()}#${el.id}`);
    """)


def low_contrast_text(driver, minimum=4.5):
    """Visible text whose contrast with the background behind it is under `minimum` (WCAG 2
    relative luminance; disabled controls are exempt, as WCAG exempts them)."""
    return driver.execute_script("""
        const minimum = arguments[0];
        const rgba = (text) => (text.match(/[0-9.]+/g) || []).map(Number);
        const luminance = ([r, g, b]) => {
            const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
            return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
        };
        const background = (el) => {
            for (let node = el; node; node = node.parentElement) {
                const color = rgba(getComputedStyle(node).backgroundColor);
                if (color.length === 3 || (color.length === 4 && color[3] > 0)) return color.slice(0, 3);
            }
            return [255, 255, 255];
        };
        const out = [];
        for (const el of document.querySelectorAll("body *")) {
            if (el.offsetParent === null || el.disabled || el.closest(":disabled")) continue;
            const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
            if (!own) continue;
            const style = getComputedStyle(el);
            const a = luminance(rgba(style.color).slice(0, 3)), b = luminance(background(el));
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            if (ratio < minimum) out.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
        }
        return out;
    """, minimum)
