"""The PostgreSQL outbox, through the worked example of docs/POSTGRES.md, against a real node.

Runs when the black-box suites run on PostgreSQL (TIDINGS_TEST_ENGINE=postgres, as tools/test
does in its second pass); on SQLite there is no outbox.
"""
import json
import pathlib
import subprocess
import sys
import time
import urllib.request

import pytest
import tidings_process
from tidings_process import ROOT

pytestmark = pytest.mark.skipif(tidings_process.ENGINE != "postgres", reason="the outbox is PostgreSQL's")

sys.path.insert(0, str(ROOT / "examples" / "postgres-outbox"))
psycopg = pytest.importorskip("psycopg")
import assign_task as example  # noqa: E402


def database_url(server):
    return server.store[server.store.index("--postgres") + 1]


@pytest.fixture
def conn(server):
    with psycopg.connect(database_url(server), autocommit=True) as connection:
        connection.execute("CREATE TABLE tasks (id int PRIMARY KEY, title text NOT NULL, assignee text)")
        connection.execute("INSERT INTO tasks SELECT n, 'Task ' || n FROM generate_series(1, 100) AS n")
        yield connection


def get(server, path, token):
    request = urllib.request.Request(server.base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def log_ids(server):
    page = get(server, "/v1/events?limit=1000", server.token("auditor", "audit"))
    return [event["id"] for event in page["events"]]


def insert(conn, type_, user, event_id, data):
    conn.execute("INSERT INTO tidings_outbox (type, user_id, event_id, data) VALUES (%s, %s, %s, %s)",
                 (type_, user, event_id, data if isinstance(data, str) else json.dumps(data)))


def test_an_assignment_and_its_notification_commit_together(server, conn):
    event_id = example.assign_task(conn, 7, "bob", "alice", "a1")
    result = example.outcome(conn, event_id)
    assert result == {"status": "appended", "seq": 1, "error_code": None, "error_message": None}
    unread = get(server, "/v1/users/bob/unread", server.token("user", "bob"))
    assert unread["unread_count"] == 1
    created = unread["notifications"][0]
    assert (created["id"], created["seq"], created["type"]) == (event_id, 1, "notification.created")
    assert created["data"] == {"notification_id": "task-7-a1", "kind": "task.assigned",
                               "title": "alice assigned you “Task 7”", "link": "/tasks/7", "actor_id": "alice"}
    assert conn.execute("SELECT assignee FROM tasks WHERE id = 7").fetchone() == ("bob",)
    assert conn.execute("SELECT processed_at IS NOT NULL FROM tidings_outbox").fetchone() == (True,)


def test_a_rolled_back_assignment_notifies_nobody(server, conn):
    with pytest.raises(RuntimeError):
        with conn.transaction():
            example.assign_task(conn, 8, "carol", "alice", "lost")
            raise RuntimeError("the service fails after assigning")
    later = example.assign_task(conn, 9, "carol", "alice", "kept")
    assert example.outcome(conn, later)["seq"] == 1, "the rolled-back event took no seq"
    assert conn.execute("SELECT assignee FROM tasks WHERE id = 8").fetchone() == (None,)
    assert conn.execute("SELECT event_id FROM tidings_outbox").fetchall() == [(later,)]
    assert log_ids(server) == [later]


def test_a_retried_assignment_is_a_duplicate(server, conn):
    first = example.assign_task(conn, 10, "dave", "alice", "retry-1")
    appended = example.outcome(conn, first)
    again = example.assign_task(conn, 10, "dave", "alice", "retry-1")
    assert again == first
    assert example.outcome(conn, again) == {"status": "duplicate", "seq": appended["seq"], "error_code": None,
                                            "error_message": None}
    assert log_ids(server) == [first]
    assert conn.execute("SELECT count(*) FROM tidings_outbox WHERE event_id = %s", (first,)).fetchone() == (2,)


def test_rows_that_break_a_rule_are_rejected_with_the_error_and_change_nothing(server, conn):
    good = example.assign_task(conn, 11, "erin", "alice", "ok")
    assert example.outcome(conn, good)["status"] == "appended"
    bad = [
        ("notification.bogus", "erin", "bad-type", {"notification_id": "x"}),
        ("notification.created", "erin", "bad-data", {"title": "no notification id"}),
        ("notification.created", "erin", "bad-field", {"notification_id": "y", "colour": "red"}),
        ("notification.created", "not a user id", "bad-user", {"notification_id": "z"}),
        ("notification.created", "erin", "bad json shape", {"notification_id": "w"}),
        ("notification.created", "erin", "same-notification", {"notification_id": "task-11-ok"}),
        ("notification.created", "erin", good, {"notification_id": "other"}),
        ("notification.created", "erin", "array-data", "[1, 2]"),
    ]
    with conn.transaction():
        for row in bad:
            insert(conn, *row)
    after = example.assign_task(conn, 12, "erin", "alice", "after")
    assert example.outcome(conn, after)["seq"] == 2, "a rejected row blocks nothing behind it"
    rows = conn.execute(
        "SELECT event_id, status, seq, error_code, error_message FROM tidings_outbox "
        "WHERE status = 'rejected' ORDER BY outbox_id").fetchall()
    assert [(event_id, status, seq, code) for event_id, status, seq, code, _ in rows] == [
        ("bad-type", "rejected", None, "bad_request"),
        ("bad-data", "rejected", None, "bad_request"),
        ("bad-field", "rejected", None, "bad_request"),
        ("bad-user", "rejected", None, "bad_request"),
        ("bad json shape", "rejected", None, "bad_request"),
        ("same-notification", "rejected", None, "conflict"),
        (good, "rejected", None, "conflict"),
        ("array-data", "rejected", None, "bad_request"),
    ]
    messages = [row[4] for row in rows]
    assert all(messages), messages
    assert "notification_id" in messages[1] and "colour" in messages[2] and "user_id" in messages[3]
    assert log_ids(server) == [good, after]


def test_rows_are_appended_in_outbox_order_and_noops_append_nothing(server, conn):
    with conn.transaction():
        for index in range(30):
            insert(conn, "notification.created", "frank", f"first-{index}", {"notification_id": f"n-{index}"})
    with conn.transaction():
        for index in range(30, 60):
            insert(conn, "notification.created", "frank", f"second-{index}", {"notification_id": f"n-{index}"})
        insert(conn, "notification.read", "frank", "read-unknown", {"notification_id": "never-created"})
        insert(conn, "notification.read", "frank", "read-3", {"notification_id": "n-3"})
    assert example.outcome(conn, "read-3")["status"] == "appended"
    assert example.outcome(conn, "read-unknown") == {"status": "noop", "seq": None, "error_code": None,
                                                     "error_message": None}
    rows = conn.execute("SELECT seq FROM tidings_outbox WHERE seq IS NOT NULL ORDER BY outbox_id").fetchall()
    assert [seq for (seq,) in rows] == list(range(1, 62))
    stream = get(server, "/v1/users/frank/events?limit=100", server.token("user", "frank"))
    assert [event["id"] for event in stream["events"]] == (
        [f"first-{i}" for i in range(30)] + [f"second-{i}" for i in range(30, 60)] + ["read-3"])
    assert get(server, "/v1/users/frank/unread", server.token("user", "frank"))["unread_count"] == 59


def test_the_example_runs_as_a_program(server, conn):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "postgres-outbox" / "assign_task.py"),
                             database_url(server), "5", "gina", "--by", "hal"],
                            capture_output=True, text=True, timeout=60, check=True)
    printed = json.loads(result.stdout)
    assert printed["status"] == "appended" and printed["seq"] == 1
    assert log_ids(server) == [printed["event_id"]]


def test_the_docs_show_the_example_as_it_is_tested():
    page = (ROOT / "docs" / "POSTGRES.md").read_text()
    source = (ROOT / "examples" / "postgres-outbox" / "assign_task.py").read_text()
    start = source.index("def assign_task")
    function = source[start:source.index("\n\n\n", start)]
    assert function in page, "docs/POSTGRES.md must show assign_task exactly as examples/postgres-outbox has it"
