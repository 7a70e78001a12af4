"""GET /v1/users/{user_id}/notifications: newest first, with read state, filtered and paged."""
import json

import requests

from schema_check import validate


def get(server, path, token):
    return requests.get(server.base + path, headers={"Authorization": f"Bearer {token}"})


def append(server, token, events):
    response = requests.post(server.base + "/v1/events", headers={"Authorization": f"Bearer {token}"},
                             json={"events": events})
    assert response.status_code in (200, 201), response.text
    return response.json()["results"]


def created(user, notification, kind=None):
    data = {"notification_id": notification, "title": f"About {notification}"}
    if kind:
        data["kind"] = kind
    return {"type": "notification.created", "user_id": user, "data": data}


def test_the_list_is_newest_first_with_state_filters_and_pages(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    kinds = ["mention", "build.failed", None]
    append(server, publisher, [created("alice", f"n-{i}", kinds[i % 3]) for i in range(12)])
    append(server, publisher, [created("bob", "b-1", "mention")])
    append(server, publisher, [{"type": "notification.read", "user_id": "alice", "data": {"notification_id": n}}
                               for n in ["n-11", "n-9", "n-3"]])

    def walk(query, limit):
        ids, before, pages = [], None, 0
        while True:
            path = f"/v1/users/alice/notifications?limit={limit}{query}" + (f"&before={before}" if before else "")
            response = get(server, path, alice)
            assert response.status_code == 200, response.text
            body = response.json()
            validate(body, "notification-list-response.json")
            assert body["unread_count"] == 9
            ids += [(item["event"]["data"]["notification_id"], item["read"]) for item in body["notifications"]]
            pages += 1
            if not body["has_more"]:
                return ids, pages, body
            before = body["next_before"]

    everything, pages, _ = walk("", 5)
    assert [n for n, _ in everything] == [f"n-{i}" for i in range(11, -1, -1)]
    assert {n for n, read in everything if read} == {"n-11", "n-9", "n-3"}
    assert pages == 3
    unread, _, _ = walk("&state=unread", 4)
    assert [n for n, _ in unread] == [f"n-{i}" for i in range(10, -1, -1) if i not in (9, 3)]
    assert all(not read for _, read in unread)
    mentions, _, _ = walk("&kind=mention", 2)
    assert [n for n, _ in mentions] == ["n-9", "n-6", "n-3", "n-0"]
    unread_builds, _, last = walk("&state=unread&kind=build.failed", 1000)
    assert [n for n, _ in unread_builds] == ["n-10", "n-7", "n-4", "n-1"]
    # The page's cursor is the stream's head: streaming from it starts after the reads.
    head = get(server, "/v1/users/alice/events?limit=1000", alice).json()["events"][-1]
    assert head["seq"] == 16 and head["type"] == "notification.read"
    tail = get(server, f"/v1/users/alice/events?after={last['cursor']}", alice).json()
    assert tail["events"] == [] and tail["has_more"] is False


def test_an_empty_list_and_bad_requests_change_nothing(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    append(server, publisher, [created("alice", "n-1"), created("bob", "b-1")])
    bob_cursor = get(server, "/v1/users/bob/events", server.token("user", "bob")).json()["next_cursor"]

    nobody = get(server, "/v1/users/nobody/notifications", publisher)
    assert nobody.status_code == 200
    body = nobody.json()
    validate(body, "notification-list-response.json")
    assert body["notifications"] == [] and body["has_more"] is False and body["unread_count"] == 0
    assert body["next_before"] == body["cursor"]

    only = get(server, "/v1/users/alice/notifications?limit=1", alice).json()
    assert [i["event"]["data"]["notification_id"] for i in only["notifications"]] == ["n-1"]
    assert only["has_more"] is False
    older = get(server, f"/v1/users/alice/notifications?before={only['next_before']}", alice).json()
    assert older["notifications"] == [] and older["has_more"] is False
    assert older["next_before"] == only["next_before"]

    for query, status, code in [
        ("state=deleted", 400, "bad_request"),
        ("kind=" + "k" * 65, 400, "bad_request"),
        ("limit=0", 400, "bad_request"),
        (f"before={bob_cursor}", 400, "invalid_cursor"),
        ("before=not-a-cursor", 400, "invalid_cursor"),
    ]:
        response = get(server, f"/v1/users/alice/notifications?{query}", alice)
        assert response.status_code == status, (query, response.text)
        assert response.json()["error"]["code"] == code, query
    assert get(server, "/v1/users/bob/notifications", alice).status_code == 403
    assert get(server, "/v1/users/alice/notifications", server.token("user", "alice")).json()["unread_count"] == 1
    assert json.loads(get(server, "/v1/stats", server.token("auditor", "a")).text)["events"] == 2


def test_the_kind_filter_compares_the_value_not_its_spelling(server):
    publisher = server.token("publisher", "backend")
    alice = server.token("user", "alice")
    body = ('{"events":['
            '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-1","kind":"secur\\u0069ty"}},'
            '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-2","metadata":{"kind":"security"}}},'
            '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-3","kind":"security"}},'
            '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-4","kind":"security.alert"}},'
            '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-5","kind":"0123456789abcdef"}}'
            ']}')
    response = requests.post(server.base + "/v1/events", data=body,
                             headers={"Authorization": f"Bearer {publisher}", "Content-Type": "application/json"})
    assert response.status_code == 201, response.text

    def listed(kind):
        page = get(server, f"/v1/users/alice/notifications?kind={kind}", alice).json()
        return [item["event"]["data"]["notification_id"] for item in page["notifications"]]

    assert listed("security") == ["n-3", "n-1"]
    assert listed("security.alert") == ["n-4"]
    assert listed("0123456789abcdef") == ["n-5"]
    assert listed("securit") == []
