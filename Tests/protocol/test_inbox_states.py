"""The inbox states (PROTOCOL.md, Inbox states): every state event over HTTP, its noop, its
counts on the append, the stream and the reads, and the list's states."""

import requests

from schema_check import validate

FUTURE = "2099-01-01T09:00:00Z"


def post_events(server, token, events):
    return requests.post(server.base + "/v1/events", headers={"Authorization": f"Bearer {token}"},
                         json={"events": events})


def change(event_type, notification, **extra):
    return {"type": f"notification.{event_type}", "user_id": "alice", "data": {"notification_id": notification, **extra}}


def bulk(event_type, **data):
    return {"type": f"notification.{event_type}", "user_id": "alice", "data": data}


def counts(body):
    return (body["unread_count"], body["unseen_count"], body["archived_count"])


def listed(server, token, state):
    response = requests.get(server.base + f"/v1/users/alice/notifications?state={state}",
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    validate(body, "notification-list-response.json")
    return [item["event"]["data"]["notification_id"] for item in body["notifications"]], body


def test_every_state_event_changes_the_counts_and_the_lists(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    kinds = ["build.failed", "mention", "build.failed", "mention", "build.failed"]
    created = [{"type": "notification.created", "user_id": "alice",
                "data": {"notification_id": f"n-{i}", "title": "T", "kind": kinds[i]}} for i in range(5)]
    assert post_events(server, publisher, created).status_code == 201

    steps = [
        # (event, status, (unread, unseen, archived) after)
        (change("seen", "n-0"), "appended", (5, 4, 0)),
        (change("seen", "n-0"), "noop", None),
        (change("read", "n-1"), "appended", (4, 3, 0)),
        (change("unread", "n-1"), "appended", (5, 3, 0)),
        (change("unread", "n-1"), "noop", None),
        (change("archived", "n-2"), "appended", (4, 2, 1)),
        (change("snoozed", "n-3", until=FUTURE), "appended", (3, 1, 1)),
        (change("snoozed", "n-3", until=FUTURE), "noop", None),
        (bulk("seen_all", kind="build.failed"), "appended", (3, 0, 1)),
        (bulk("read_all", up_to_seq=2), "appended", (1, 0, 1)),
        (bulk("archived_all", only_read=True), "appended", (1, 0, 3)),
        (change("unarchived", "n-2"), "appended", (2, 0, 2)),
        (change("unsnoozed", "n-3"), "appended", (3, 1, 2)),
        (change("unsnoozed", "n-3"), "noop", None),
    ]
    for event, status, expected in steps:
        response = post_events(server, publisher, [event])
        assert response.status_code in (200, 201), (event, response.text)
        result = response.json()["results"][0]
        assert result["status"] == status, (event, result)
        if expected:
            validate(result["event"], "envelope.json")
            unread = requests.get(server.base + "/v1/users/alice/unread", headers={"Authorization": f"Bearer {alice}"})
            validate(unread.json(), "unread-response.json")
            assert counts(unread.json()) == expected, event

    # n-0 and n-1 read by the read_all, then archived (only_read); n-2 archived then
    # unarchived, seen by seen_all; n-3 snoozed then unsnoozed; n-4 unread, seen by seen_all.
    assert listed(server, alice, "inbox")[0] == ["n-4", "n-3", "n-2"]
    assert listed(server, alice, "all")[0] == ["n-4", "n-3", "n-2", "n-1", "n-0"]
    assert listed(server, alice, "archived")[0] == ["n-1", "n-0"]
    assert listed(server, alice, "unseen")[0] == ["n-3"]
    assert listed(server, alice, "unread")[0] == ["n-4", "n-3", "n-2"]
    assert listed(server, alice, "snoozed")[0] == []
    items, body = listed(server, alice, "all")
    assert counts(body) == (3, 1, 2)
    state = {item["event"]["data"]["notification_id"]: item for item in body["notifications"]}
    assert (state["n-0"]["read"], state["n-0"]["seen"], state["n-0"]["archived"]) == (True, True, True)
    assert (state["n-2"]["read"], state["n-2"]["seen"], state["n-2"]["archived"]) == (False, True, False)

    post_events(server, publisher, [change("snoozed", "n-4", until="2099-01-02T10:00:00+01:00")])
    items, body = listed(server, alice, "snoozed")
    assert items == ["n-4"]
    assert body["notifications"][0]["snoozed_until"] == "2099-01-02T09:00:00.000Z"
    assert counts(body) == (2, 1, 2)

    # The stream replays every state event with the counts after it.
    messages = server.replay(alice)
    events = [m for m in messages if m["type"] == "event"]
    for message in messages:
        validate(message, "ws-server-message.json")
    assert [m["event"]["type"] for m in events][5:] == [
        "notification.seen", "notification.read", "notification.unread", "notification.archived",
        "notification.snoozed", "notification.seen_all", "notification.read_all", "notification.archived_all",
        "notification.unarchived", "notification.unsnoozed", "notification.snoozed"]
    assert counts(events[-1]) == counts(messages[-1]) == (2, 1, 2)


def test_bad_state_events_are_refused_and_change_nothing(server):
    publisher = server.token("publisher", "backend")
    post_events(server, publisher, [{"type": "notification.created", "user_id": "alice",
                                     "data": {"notification_id": "n-0"}}])
    for event, message in [
        (change("snoozed", "n-0"), "data.until is required for notification.snoozed"),
        (change("snoozed", "n-0", until="2001-01-01T00:00:00Z"), "data.until must be later than now"),
        (change("snoozed", "n-0", until="soon"), "data.until must be an RFC 3339 time such as 2026-12-05T09:00:00Z"),
        (bulk("read_all", only_read=True), "data.only_read is not a field of notification.read_all"),
        (change("seen", "n-0", kind="x"), "data.kind is not a field of notification.seen"),
    ]:
        response = post_events(server, publisher, [event])
        assert response.status_code == 400, (event, response.text)
        assert response.json()["error"]["message"] == message
    stats = requests.get(server.base + "/v1/stats", headers={"Authorization": f"Bearer {server.token('admin', 'a')}"})
    assert stats.json()["events"] == 1
