"""Checks of our own for schemathesis: a rejected request changes nothing in the log."""
import os

import requests
import schemathesis

BASE = os.environ["TIDINGS_API_URL"]
AUTH = {"Authorization": "Bearer " + os.environ["TIDINGS_API_TOKEN"]}
STATE = {"events": None}


def log_events():
    return requests.get(BASE + "/v1/stats", headers=AUTH, timeout=30).json()["events"]


@schemathesis.check
def rejected_requests_append_nothing(ctx, response, case):
    """Every POST is followed by a look at the log's event count: after a refused one (4xx or
    5xx) it must be what it was after the previous POST."""
    if case.method.upper() != "POST":
        return None
    before, after = STATE["events"], log_events()
    STATE["events"] = after
    if before is not None and response.status_code >= 400 and after != before:
        raise AssertionError(f"a refused request ({response.status_code}) appended {after - before} events")
    return None
