"""Checks of our own for schemathesis: a rejected request changes nothing in the log."""
import os

import requests
import schemathesis
import yaml

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


def concrete_paths():
    """The paths of Schemas/openapi.yaml without a template: `/v1/events`, `/v1/stats`, ..."""
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "Schemas", "openapi.yaml")) as file:
        return {path for path in yaml.safe_load(file)["paths"] if "{" not in path}


CONCRETE = concrete_paths()


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):
    """OpenAPI matches a concrete path before a templated one, and so does the server: a
    generated `document` of `events` makes `GET /v1/events`, another operation, whose 200 is
    right. Such values are dropped; every other value, valid or not, is still sent."""
    operation = ctx.operation
    if operation is None or not path_parameters:
        return True
    path = operation.path
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", str(value))
    return path not in CONCRETE
