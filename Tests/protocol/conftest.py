"""A real `tidings serve` process on a free port, for black-box protocol tests. The helpers the
tests import live in Tests/support (tests import modules by name, and every test folder has a
conftest.py, so none is imported from here)."""
import pathlib
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from tidings_process import Server  # noqa: E402


@pytest.fixture
def server():
    directory = tempfile.mkdtemp(prefix="tidings-protocol-")
    instance = Server(directory)
    yield instance
    instance.stop()
    shutil.rmtree(directory, ignore_errors=True)
