"""The cluster tests: Tidings nodes and PostgreSQL servers on hosts made of network namespaces
(root only, as in CI). The helpers live beside the tests in this folder."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test, so a fixture can tell whether the test failed."""
    outcome = yield
    setattr(item, "report_" + call.when, outcome.get_result())
