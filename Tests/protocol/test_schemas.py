"""Real responses and messages of a running server, validated against Schemas/."""
import asyncio
import json

import requests
import websockets

from schema_check import validate


def call(server, method, path, token=None, body=None, headers=None, schema=None, status=None):
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    response = requests.request(method, server.base + path, headers=all_headers,
                                data=None if body is None else (body if isinstance(body, str) else json.dumps(body)))
    if status is not None:
        assert response.status_code == status, (path, response.status_code, response.text)
    if schema is not None:
        validate(response.json(), schema if response.status_code < 400 else "error.json")
    return response


def test_every_route_answers_in_its_schema(server):
    publisher = server.token("publisher", "backend")
    admin = server.token("admin", "ops")
    auditor = server.token("auditor", "audit")
    alice = server.token("user", "alice")
    events = [{"type": "notification.created", "user_id": "alice", "id": f"e-{i}",
               "data": {"notification_id": f"n-{i}", "kind": "task.assigned", "title": "T", "body": "B",
                        "link": "https://x", "actor_id": "bob", "metadata": {"k": [1, None]}}} for i in range(5)]
    for event in events:
        validate(event, "event-input.json")
    validate({"events": events}, "append-request.json")
    first = call(server, "POST", "/v1/events", publisher, {"events": events}, schema="append-response.json", status=201)
    call(server, "POST", "/v1/events", publisher, events[0], schema="append-response.json", status=200)
    call(server, "POST", "/v1/events", publisher,
         {"type": "notification.read", "user_id": "alice", "data": {"notification_id": "nope"}},
         schema="append-response.json", status=200)
    for body in [{"notification_ids": ["n-1", "n-2"]}, {"all": True, "up_to_seq": 3}, {"all": True}]:
        validate(body, "read-request.json")
        call(server, "POST", "/v1/users/alice/read", alice, body, schema="read-response.json", status=200)
    page = call(server, "GET", "/v1/users/alice/events?limit=2", alice, schema="page.json", status=200).json()
    call(server, "GET", f"/v1/users/alice/events?after={page['next_cursor']}", alice, schema="page.json", status=200)
    call(server, "GET", "/v1/users/alice/unread", alice, schema="unread-response.json", status=200)
    call(server, "GET", "/v1/users/nobody/unread", publisher, schema="unread-response.json", status=200)
    call(server, "GET", "/v1/events?type=notification.read&limit=5", auditor, schema="page.json", status=200)
    call(server, "GET", "/v1/events?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z", auditor, schema="page.json")
    ndjson = call(server, "GET", "/v1/events", auditor, headers={"Accept": "application/x-ndjson"}, status=200)
    lines = ndjson.text.splitlines()
    assert len(lines) == 9  # 5 created, 2 reads, 2 read_all
    for line in lines:
        validate(json.loads(line), "envelope.json")
    verify = call(server, "GET", "/v1/log/verify", auditor, schema="verify-response.json", status=200).json()
    call(server, "GET", f"/v1/log/verify?seq={verify['head_seq']}&hash={verify['head_hash']}", auditor,
         schema="verify-response.json", status=200)
    call(server, "GET", "/v1/stats", auditor, schema="stats-response.json", status=200)
    call(server, "GET", "/v1/admin/projections/rebuild", admin, schema="rebuild-job.json", status=200)
    call(server, "POST", "/v1/admin/projections/rebuild", admin, {}, schema="rebuild-job.json", status=202)
    call(server, "GET", "/v1/admin/projections/rebuild", admin, schema="rebuild-job.json", status=200)
    call(server, "POST", "/v1/admin/projections/verify", admin, schema="projection-verify-response.json", status=200)
    call(server, "GET", "/healthz", schema="health.json", status=200)
    assert first.json()["results"][0]["event"]["cursor"]


def test_every_error_answers_in_the_error_schema(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    cases = [
        ("GET", "/v1/stats", None, None, {}, 401),
        ("GET", "/v1/stats", alice, None, {}, 403),
        ("POST", "/v1/events", publisher, "x", {"Content-Type": "text/plain"}, 415),
        ("POST", "/v1/events", publisher, {"events": [{"type": "notification.read", "user_id": "a", "data": {}}] * 1001}, {}, 413),
        ("POST", "/v1/events", publisher, {"type": "bogus", "user_id": "a", "data": {}}, {}, 400),
        ("GET", "/v1/users/alice/events?after=junk", alice, None, {}, 400),
        ("GET", "/v1/nothing", None, None, {}, 404),
        ("DELETE", "/v1/events", publisher, None, {}, 405),
    ]
    for method, path, token, body, headers, status in cases:
        response = call(server, method, path, token, body, headers=headers, status=status)
        validate(response.json(), "error.json")
    call(server, "POST", "/v1/events", publisher,
         {"type": "notification.created", "user_id": "alice", "data": {"notification_id": "n"}}, status=201)
    conflict = call(server, "POST", "/v1/events", publisher,
                    {"type": "notification.created", "user_id": "alice", "data": {"notification_id": "n"}}, status=409)
    validate(conflict.json(), "error.json")
    assert conflict.json()["error"]["index"] == 0
    page = call(server, "GET", "/v1/users/alice/events", alice).json()
    ahead = page["next_cursor"]
    call(server, "POST", "/v1/events", publisher,
         {"type": "notification.created", "user_id": "bob", "data": {"notification_id": "n"}}, status=201)
    reset = call(server, "GET", "/v1/users/alice/events?after=" + ahead[:-1] + ("A" if ahead[-1] != "A" else "B"), alice)
    validate(reset.json(), "error.json")


def test_stream_messages_answer_in_their_schemas(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    for i in range(3):
        call(server, "POST", "/v1/events", publisher,
             {"type": "notification.created", "user_id": "alice", "data": {"notification_id": f"n-{i}"}}, status=201)

    async def scenario():
        received = []
        async with websockets.connect(server.ws) as socket:
            hello = {"type": "hello", "token": alice, "stream": "user", "user_id": "alice", "cursor": None}
            validate(hello, "ws-client-message.json")
            await socket.send(json.dumps(hello))
            while True:
                message = json.loads(await socket.recv())
                received.append(message)
                if message["type"] == "caught_up":
                    break
            read = {"type": "read", "ref": "r1", "notification_ids": ["n-0"]}
            validate(read, "ws-client-message.json")
            await socket.send(json.dumps(read))
            while received[-1]["type"] != "ack":
                received.append(json.loads(await socket.recv()))
        async with websockets.connect(server.ws) as socket:
            await socket.send(json.dumps({"type": "hello", "token": alice, "cursor": "ZZZZ"}))
            received.append(json.loads(await socket.recv()))
            try:
                await socket.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd.code == 4400
        return received

    messages = asyncio.run(scenario())
    assert [m["type"] for m in messages] == ["welcome", "event", "event", "event", "caught_up", "event", "ack", "error"]
    for message in messages:
        validate(message, "ws-server-message.json")
