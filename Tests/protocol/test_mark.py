"""State changes as clients ask for them (PROTOCOL.md, Inbox states): `POST /v1/users/{id}/mark`
and `/read`, the WebSocket `mark` and `read` messages with their acks, and the server's own
unsnooze when a snooze ends."""
import asyncio
import datetime
import json
import tempfile
import time

import requests
import websockets

from schema_check import validate
from tidings_process import Server

FUTURE = "2099-01-01T09:00:00Z"


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def create(server, user, count, kinds=None):
    publisher = server.token("publisher", "backend")
    events = [{"type": "notification.created", "user_id": user,
               "data": {"notification_id": f"n-{i}", "title": "T", **({"kind": kinds[i]} if kinds else {})}}
              for i in range(count)]
    response = requests.post(server.base + "/v1/events", headers=auth(publisher), json={"events": events})
    assert response.status_code == 201, response.text


def mark(server, token, body, user="alice", route="mark"):
    return requests.post(server.base + f"/v1/users/{user}/{route}", headers=auth(token), json=body)


def counts(body):
    return (body["unread_count"], body["unseen_count"], body["archived_count"])


def event_count(server):
    stats = requests.get(server.base + "/v1/stats", headers=auth(server.token("admin", "root")))
    return stats.json()["events"]


def stream_events(server, token, cursor=None):
    """Every event of the user stream after `cursor`, replayed."""
    return [m for m in server.replay(token, cursor) if m["type"] == "event"]


def test_every_change_over_http_answers_what_changed_with_the_counts(server):
    create(server, "alice", 4, kinds=["build.failed", "mention", "build.failed", "mention"])
    alice = server.token("user", "alice")
    steps = [
        # (body, changed, (unread, unseen, archived) after)
        ({"change": "seen", "notification_ids": ["n-0", "n-0", "missing"]}, ["n-0"], (4, 3, 0)),
        ({"change": "read", "notification_ids": ["n-1", "n-0"]}, ["n-1", "n-0"], (2, 2, 0)),
        ({"change": "read", "notification_ids": ["n-1"]}, [], (2, 2, 0)),
        ({"change": "unread", "notification_ids": ["n-1"]}, ["n-1"], (3, 2, 0)),
        ({"change": "archive", "notification_ids": ["n-2"]}, ["n-2"], (2, 1, 1)),
        ({"change": "unarchive", "notification_ids": ["n-2"]}, ["n-2"], (3, 2, 0)),
        ({"change": "snooze", "notification_ids": ["n-3"], "until": FUTURE}, ["n-3"], (2, 1, 0)),
        ({"change": "unsnooze", "notification_ids": ["n-3"]}, ["n-3"], (3, 2, 0)),
        ({"change": "seen", "all": True, "kind": "build.failed"}, ["n-2"], (3, 1, 0)),
        ({"change": "read", "all": True, "up_to_seq": 2}, ["n-1"], (2, 1, 0)),
        ({"change": "archive", "all": True, "only_read": True}, ["n-0", "n-1"], (2, 1, 2)),
        ({"change": "archive", "all": True, "kind": "mention"}, ["n-3"], (1, 0, 3)),
        ({"change": "archive", "all": True}, ["n-2"], (0, 0, 4)),
        ({"change": "archive", "all": True}, [], (0, 0, 4)),
    ]
    for body, changed, expected in steps:
        validate(body, "mark-request.json")
        before = event_count(server)
        response = mark(server, alice, body)
        assert response.status_code == 200, (body, response.text)
        answer = response.json()
        validate(answer, "mark-response.json")
        assert answer["changed"] == changed, body
        assert counts(answer) == expected, body
        appended = event_count(server) - before
        assert appended == (0 if not changed else 1 if "all" in body else len(changed)), body
        # The cursor is the user stream's head: nothing after it.
        assert stream_events(server, alice, answer["cursor"]) == []

    types = [m["event"]["type"] for m in stream_events(server, alice)][4:]
    assert types == [
        "notification.seen", "notification.read", "notification.read", "notification.unread",
        "notification.archived", "notification.unarchived", "notification.snoozed", "notification.unsnoozed",
        "notification.seen_all", "notification.read_all", "notification.archived_all", "notification.archived_all",
        "notification.archived_all"]


def test_read_all_takes_a_kind(server):
    create(server, "alice", 3, kinds=["build.failed", "mention", "build.failed"])
    alice = server.token("user", "alice")
    body = {"all": True, "kind": "build.failed"}
    validate(body, "read-request.json")
    response = mark(server, alice, body, route="read")
    assert response.status_code == 200, response.text
    validate(response.json(), "read-response.json")
    assert response.json()["read"] == ["n-0", "n-2"]
    assert counts(response.json()) == (1, 1, 0)


def test_bad_marks_are_refused_by_name_and_change_nothing(server):
    create(server, "alice", 1)
    alice = server.token("user", "alice")
    before = event_count(server)
    for body, message in [
        ({"notification_ids": ["n-0"]},
         "a mark request needs change: one of read, unread, seen, archive, unarchive, snooze, unsnooze"),
        ({"change": "pin", "notification_ids": ["n-0"]},
         "change must be one of read, unread, seen, archive, unarchive, snooze, unsnooze"),
        ({"change": "snooze", "notification_ids": ["n-0"]}, "a snooze needs until: an RFC 3339 time later than now"),
        ({"change": "snooze", "notification_ids": ["n-0"], "until": "tomorrow"},
         "until must be an RFC 3339 time such as 2026-12-05T09:00:00Z"),
        ({"change": "snooze", "notification_ids": ["n-0"], "until": "2001-01-01T00:00:00Z"},
         "data.until must be later than now"),
        ({"change": "read", "notification_ids": ["n-0"], "until": FUTURE}, "until belongs to the snooze change only"),
        ({"change": "unread", "all": True}, "unread names its notifications: all is for read, seen and archive"),
        ({"change": "read", "all": True, "only_read": True}, "only_read belongs to the archive change only"),
        ({"change": "read", "notification_ids": ["n-0"], "kind": "x"},
         "give either notification_ids or all (with its bounds), not both"),
        ({"change": "read", "all": True, "kind": ""}, "kind must be a string of 1-64 characters"),
        ({"change": "read", "all": True, "up_to_seq": 0}, "up_to_seq must be a positive integer seq"),
        ({"change": "read", "notification_ids": [7]}, "notification_ids[0] must be a string"),
        ({"change": "read", "notification_ids": ["bad id"]},
         "notification_ids[0] may only contain A-Z a-z 0-9 . _ : @ -"),
        ({"change": "read", "notification_ids": ["n-0"], "pin": True}, "pin is not a field of a mark request"),
    ]:
        response = mark(server, alice, body)
        assert response.status_code == 400, (body, response.text)
        validate(response.json(), "error.json")
        assert response.json()["error"]["message"] == message, body
    too_many = mark(server, alice, {"change": "read", "notification_ids": [f"n-{i}" for i in range(1001)]})
    assert too_many.status_code == 413
    assert mark(server, alice, {"notification_ids": ["n-0"], "until": FUTURE}, route="read").json()["error"]["message"] == "until is not a field of a read request"
    assert event_count(server) == before


def test_who_may_mark(server):
    create(server, "alice", 2)
    body = {"change": "archive", "notification_ids": ["n-0"]}
    assert mark(server, server.token("user", "bob"), body).status_code == 403
    assert mark(server, server.token("auditor", "audit"), body).status_code == 403
    assert mark(server, "not-a-token", body).status_code == 401
    assert mark(server, server.token("publisher", "backend"), body).json()["changed"] == ["n-0"]
    body["notification_ids"] = ["n-1"]
    assert mark(server, server.token("admin", "root"), body).json()["changed"] == ["n-1"]


def test_mark_over_the_stream_acks_after_its_events_and_reaches_every_connection(server):
    create(server, "alice", 3)
    alice = server.token("user", "alice")

    async def run():
        async with websockets.connect(server.ws) as first, websockets.connect(server.ws) as second:
            for socket_ in (first, second):
                await socket_.send(json.dumps({"type": "hello", "token": alice, "cursor": None}))
            for socket_ in (first, second):
                while json.loads(await asyncio.wait_for(socket_.recv(), 10))["type"] != "caught_up":
                    pass

            async def exchange(message):
                validate(message, "ws-client-message.json")
                await first.send(json.dumps(message))
                received = []
                while not received or received[-1]["type"] != "ack":
                    received.append(json.loads(await asyncio.wait_for(first.recv(), 10)))
                for item in received:
                    validate(item, "ws-server-message.json")
                return received

            archived = await exchange({"type": "mark", "ref": "m1", "change": "archive", "notification_ids": ["n-0"]})
            assert [m["type"] for m in archived] == ["event", "ack"]
            assert archived[0]["event"]["type"] == "notification.archived"
            assert archived[1] == {"type": "ack", "ref": "m1", "status": "ok", "unread_count": 2,
                                   "unseen_count": 2, "archived_count": 1}
            snoozed = await exchange({"type": "mark", "ref": "m2", "change": "snooze", "notification_ids": ["n-1"],
                                      "until": FUTURE})
            assert snoozed[0]["event"]["data"] == {"notification_id": "n-1", "until": "2099-01-01T09:00:00.000Z"}
            assert (snoozed[1]["status"], counts(snoozed[1])) == ("ok", (1, 1, 1))
            seen = await exchange({"type": "mark", "ref": "m3", "change": "seen", "all": True})
            assert [m["event"]["type"] for m in seen if m["type"] == "event"] == ["notification.seen_all"]
            noop = await exchange({"type": "mark", "ref": "m4", "change": "seen", "all": True})
            assert noop == [{"type": "ack", "ref": "m4", "status": "noop", "unread_count": 1, "unseen_count": 0,
                             "archived_count": 1}]
            read = await exchange({"type": "read", "ref": "r1", "all": True, "kind": "none-of-these"})
            assert read[-1]["status"] == "noop"

            # The other connection got the three events, in order, with the counts after each.
            others = []
            while len(others) < 3:
                others.append(json.loads(await asyncio.wait_for(second.recv(), 10)))
            assert [(m["event"]["type"], counts(m)) for m in others] == [
                ("notification.archived", (2, 2, 1)), ("notification.snoozed", (1, 1, 1)),
                ("notification.seen_all", (1, 0, 1))]

            # A malformed mark closes the stream with 4400 and names the problem.
            await first.send(json.dumps({"type": "mark", "ref": "m5", "change": "snooze", "notification_ids": ["n-2"]}))
            error = json.loads(await asyncio.wait_for(first.recv(), 10))
            assert error == {"type": "error", "code": "bad_request",
                             "message": "a snooze needs until: an RFC 3339 time later than now"}
            try:
                await asyncio.wait_for(first.recv(), 10)
                raise AssertionError("the stream stayed open")
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd.code == 4400

    asyncio.run(run())


def test_an_auditor_stream_may_not_mark(server):
    create(server, "alice", 1)
    auditor = server.token("auditor", "audit")

    async def run():
        async with websockets.connect(server.ws) as socket_:
            await socket_.send(json.dumps({"type": "hello", "token": auditor, "user_id": "alice", "cursor": None}))
            while json.loads(await asyncio.wait_for(socket_.recv(), 10))["type"] != "caught_up":
                pass
            await socket_.send(json.dumps({"type": "mark", "ref": "a1", "change": "archive",
                                           "notification_ids": ["n-0"]}))
            ack = json.loads(await asyncio.wait_for(socket_.recv(), 10))
            assert ack == {"type": "ack", "ref": "a1", "status": "forbidden", "unread_count": 1, "unseen_count": 1,
                           "archived_count": 0}

    asyncio.run(run())
    assert event_count(server) == 1


def soon(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(condition, what, deadline=15):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {deadline} s")


def test_the_server_ends_a_snooze_when_its_time_comes(server):
    create(server, "alice", 3)
    alice = server.token("user", "alice")
    # n-1's snooze would end first but is moved far off; n-0's ends a little later. Sweeps go
    # soonest first, so once n-0's has ended, a sweep that could have ended n-1's has run.
    moved_until = soon(1.0)
    assert mark(server, alice, {"change": "snooze", "notification_ids": ["n-1"], "until": moved_until}).ok
    assert mark(server, alice, {"change": "snooze", "notification_ids": ["n-0"], "until": soon(1.5)}).ok
    assert mark(server, alice, {"change": "snooze", "notification_ids": ["n-1"], "until": FUTURE}).ok
    assert counts(requests.get(server.base + "/v1/users/alice/unread", headers=auth(alice)).json()) == (1, 1, 0)

    def unsnoozed():
        events = stream_events(server, alice)
        return [m for m in events if m["event"]["type"] == "notification.unsnoozed"]
    ended = wait_for(unsnoozed, "the snooze of n-0 ended")
    assert len(ended) == 1
    event = ended[0]["event"]
    validate(event, "envelope.json")
    assert event["data"]["notification_id"] == "n-0"
    assert event["id"].startswith("tidings:unsnooze:1:")
    assert counts(ended[0]) == (2, 2, 0)
    listed = requests.get(server.base + "/v1/users/alice/notifications?state=snoozed", headers=auth(alice)).json()
    assert [item["event"]["data"]["notification_id"] for item in listed["notifications"]] == ["n-1"]
    # The server's unsnooze of a snooze that was moved is a noop: the conditional form.
    publisher = server.token("publisher", "backend")
    stale = requests.post(server.base + "/v1/events", headers=auth(publisher), json={
        "type": "notification.unsnoozed", "user_id": "alice", "data": {"notification_id": "n-1", "until": moved_until}})
    assert stale.json()["results"][0]["status"] == "noop"
    metrics = requests.get(server.base + "/metrics").text
    assert "tidings_snoozes_ended_total 1" in metrics


def test_two_servers_of_one_store_end_a_snooze_once():
    directory = tempfile.mkdtemp(prefix="tidings-protocol-")
    first = Server(directory)
    second = Server(directory)
    try:
        create(first, "alice", 2)
        alice = first.token("user", "alice")
        for notification in ("n-0", "n-1"):
            assert mark(first, alice, {"change": "snooze", "notification_ids": [notification],
                                       "until": soon(1.0)}).ok

        def both_ended():
            events = [m["event"] for m in stream_events(second, alice)]
            ended = [e for e in events if e["type"] == "notification.unsnoozed"]
            return ended if len(ended) >= 2 else None
        ended = wait_for(both_ended, "both snoozes ended")
        assert sorted(e["data"]["notification_id"] for e in ended) == ["n-0", "n-1"]
        # Both sweepers saw the same snoozes; between them they appended each end once.
        appended = 0
        for instance in (first, second):
            for line in requests.get(instance.base + "/metrics").text.splitlines():
                if line.startswith("tidings_snoozes_ended_total "):
                    appended += int(float(line.split()[1]))
        assert appended == 2
    finally:
        first.stop()
        second.stop()
