"""Headless Chromium against a real `tidings serve`, for the browser pages.

Screenshots go to test-output/browser/. Every test ends by reading the browser's console: an
error there fails the test unless the test said to expect it (the socket errors Chromium logs
while the server is down, say).
"""
import pathlib
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from browser_session import OUTPUT, Browser  # noqa: E402
from tidings_process import Server  # noqa: E402


@pytest.fixture
def store_directory():
    directory = tempfile.mkdtemp(prefix="tidings-browser-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server(store_directory):
    instance = Server(store_directory)
    yield instance
    if instance.process.poll() is None:
        instance.stop()


@pytest.fixture
def browser(tmp_path):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    instance = Browser(tmp_path)
    yield instance
    errors = instance.console_errors()
    instance.quit()
    assert errors == [], f"the browser console logged errors: {errors}"
