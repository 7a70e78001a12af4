"""Assign a task and notify its assignee in one PostgreSQL transaction, through Tidings' outbox.

The service (a FastAPI app, say) keeps its tasks in the same PostgreSQL database as a Tidings
store served with `tidings serve --postgres URL`. It never calls Tidings to notify: it inserts
the event into `tidings_outbox` inside its own transaction, so the assignment and the
notification commit together or not at all. A Tidings node appends each committed row to the
log, in order, under every rule of `POST /v1/events`, and writes down what became of it.

    python3 assign_task.py postgres://app@db/app 7 bob --by alice
"""
import argparse
import json
import time
import uuid

import psycopg


def assign_task(conn: psycopg.Connection, task_id: int, assignee: str, assigned_by: str,
                assignment_id: str) -> str:
    """Assigns the task and queues the assignee's notification, atomically.

    `assignment_id` names this assignment (the request's idempotency key, or a new uuid): the
    event id is made from it here, so a call retried after a lost answer is a `duplicate` in
    the log, never a second notification. Returns the event id.
    """
    event_id = f"task-assigned-{assignment_id}"
    with conn.transaction():
        row = conn.execute("UPDATE tasks SET assignee = %s WHERE id = %s RETURNING title",
                           (assignee, task_id)).fetchone()
        if row is None:
            raise LookupError(f"no task {task_id}")
        conn.execute(
            "INSERT INTO tidings_outbox (type, user_id, event_id, data) VALUES (%s, %s, %s, %s)",
            ("notification.created", assignee, event_id, json.dumps({
                "notification_id": f"task-{task_id}-{assignment_id}",
                "kind": "task.assigned",
                "title": f"{assigned_by} assigned you “{row[0]}”",
                "link": f"/tasks/{task_id}",
                "actor_id": assigned_by,
            })))
    return event_id


def outcome(conn: psycopg.Connection, event_id: str, timeout_seconds: float = 10.0) -> dict:
    """Waits until a node has taken the event's newest outbox row; returns what became of it:
    status `appended` (with its `seq`), `duplicate` (`seq` of the original), `noop`, or
    `rejected` with the `error_code` and `error_message` that POST /v1/events would answer."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        row = conn.execute(
            "SELECT status, seq, error_code, error_message FROM tidings_outbox WHERE event_id = %s "
            "ORDER BY outbox_id DESC LIMIT 1", (event_id,)).fetchone()
        if row is not None and row[0] != "pending":
            return {"status": row[0], "seq": row[1], "error_code": row[2], "error_message": row[3]}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{event_id} is still pending: is a tidings node serving this database?")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description="Assign a task and notify the assignee through Tidings.")
    parser.add_argument("database", help="postgres://USER:PASSWORD@HOST:PORT/DB, the one Tidings serves")
    parser.add_argument("task_id", type=int)
    parser.add_argument("assignee")
    parser.add_argument("--by", default="someone", help="who assigns it")
    arguments = parser.parse_args()
    with psycopg.connect(arguments.database, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS tasks (id int PRIMARY KEY, title text NOT NULL, assignee text)")
        conn.execute("INSERT INTO tasks VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (arguments.task_id, f"Task {arguments.task_id}"))
        event_id = assign_task(conn, arguments.task_id, arguments.assignee, arguments.by, uuid.uuid4().hex)
        print(json.dumps({"event_id": event_id, **outcome(conn, event_id)}))


if __name__ == "__main__":
    main()
