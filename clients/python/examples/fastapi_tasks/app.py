"""A FastAPI service that assigns tasks and notifies people in real time. Built by hand, that is a
WebSocket manager, Redis Pub/Sub between worker processes, and re-sending unread notifications
when a user connects; with Tidings as the notification store and stream, each is a few lines:

- the WebSocket and the unread re-sent on connect: the page streams the user's
  notifications from Tidings with the JavaScript client, which resumes from the last one it
  processed, so nothing is missed across reconnects and nothing shows twice;
- fan-out between worker processes: Tidings does it (Redis between processes on one
  host, PostgreSQL between hosts); this service runs as many workers as it likes;
- the service publishes: `POST /tasks` stores the task and publishes
  `notification.created` with an id made from the task, so a retry never notifies twice.

Run it beside `tidings serve` (tools/serve prints a publisher token):

    TIDINGS_URL=http://127.0.0.1:8080 TIDINGS_PUBLISHER_TOKEN=... TIDINGS_JWT_SECRET=... \\
        uvicorn app:app --port 8000

then open http://127.0.0.1:8000/?user=alice and assign alice a task from another tab.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import pathlib
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from tidings_client import AsyncTidingsClient, TidingsError

TIDINGS_URL = os.environ.get("TIDINGS_URL", "http://127.0.0.1:8080")
HERE = pathlib.Path(__file__).resolve().parent
CLIENT_JS = HERE.parents[2] / "js"


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    assignee: str = Field(pattern=r"^[A-Za-z0-9._:@-]{1,128}$")


tasks: dict[int, dict[str, Any]] = {}
task_numbers = itertools.count(1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncTidingsClient(TIDINGS_URL, token=os.environ["TIDINGS_PUBLISHER_TOKEN"]) as publisher:
        app.state.publisher = publisher
        yield


app = FastAPI(title="Tasks, notified through Tidings", lifespan=lifespan)
# The JavaScript client's files here are links to those tidings serve ships.
app.mount("/tidings-client", StaticFiles(directory=CLIENT_JS, follow_symlink=True), name="tidings-client")


@app.post("/tasks", status_code=201)
async def assign(task: NewTask) -> dict[str, Any]:
    """Stores the task and notifies its assignee. The event's id comes from the task, so if this
    request is retried after a timeout, Tidings answers `duplicate` instead of notifying twice."""
    number = next(task_numbers)
    tasks[number] = {"id": number, "title": task.title, "assignee": task.assignee}
    try:
        results = await app.state.publisher.publish({
            "type": "notification.created",
            "user_id": task.assignee,
            "id": f"task-{number}-assigned",
            "data": {"notification_id": f"task-{number}", "kind": "task.assigned", "title": f"New task: {task.title}",
                     "link": f"/tasks/{number}"},
        })
    except TidingsError as error:
        raise HTTPException(status_code=502, detail=f"the notification was not published: {error}") from error
    return {**tasks[number], "notification": results[0]["status"]}


@app.get("/tasks/{number}")
async def task(number: int) -> dict[str, Any]:
    if number not in tasks:
        raise HTTPException(status_code=404, detail="no such task")
    return tasks[number]


@app.get("/tidings-token")
async def tidings_token(user: str) -> dict[str, str]:
    """A short-lived Tidings token for the signed-in user (here: named in the query, for the
    demo; a real service takes it from its own session). The page's client asks again before
    it expires."""
    secret = os.environ["TIDINGS_JWT_SECRET"].encode()

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    head = part({"alg": "HS256", "typ": "JWT"})
    body = part({"sub": user, "role": "user", "exp": int(time.time()) + 15 * 60})
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return {"token": f"{head}.{body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return (HERE / "page.html").read_text().replace("{{TIDINGS_URL}}", json.dumps(TIDINGS_URL))
