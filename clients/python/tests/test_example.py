"""The FastAPI example (examples/fastapi_tasks) against a real `tidings serve`: assigning a task
notifies its assignee once, even when the request is retried, and the page's token is one
Tidings takes."""
from __future__ import annotations

import importlib
import os
import pathlib
import sys

from fastapi.testclient import TestClient

from harness import Server
from tidings_client import TidingsClient

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "fastapi_tasks"


def test_assigning_a_task_notifies_the_assignee_once() -> None:
    server = Server()
    saved = dict(os.environ)
    try:
        os.environ.update(TIDINGS_URL=server.url, TIDINGS_PUBLISHER_TOKEN=server.token("publisher", "tasks"),
                          TIDINGS_JWT_SECRET=server.secret)
        sys.path.insert(0, str(EXAMPLE))
        app = importlib.import_module("app")
        with TestClient(app.app) as service:
            answer = service.post("/tasks", json={"title": "Review the release", "assignee": "alice"})
            assert answer.status_code == 201, answer.text
            assert answer.json() == {"id": 1, "title": "Review the release", "assignee": "alice",
                                     "notification": "appended"}
            assert service.post("/tasks", json={"title": "", "assignee": "alice"}).status_code == 422
            token = service.get("/tidings-token", params={"user": "alice"}).json()["token"]
            page = service.get("/")
            assert page.status_code == 200 and server.url in page.text
            assert service.get("/tidings-client/tidings.js").status_code == 200
        with TidingsClient(server.url, token=token) as alice:
            unread = alice.unread("alice")
        assert unread["unread_count"] == 1
        assert unread["notifications"][0]["data"] == {
            "notification_id": "task-1", "kind": "task.assigned", "title": "New task: Review the release",
            "link": "/tasks/1"}
        # The service publishing that task again (a retry) gets duplicate: one notification.
        with TidingsClient(server.url, token=server.token("publisher", "tasks")) as publisher:
            again = publisher.publish({"type": "notification.created", "user_id": "alice", "id": "task-1-assigned",
                                       "data": unread["notifications"][0]["data"]})
        assert again[0]["status"] == "duplicate"
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("app", None)
        server.stop()
