"""Tidings nodes on hosts of a `Site`, and the clients the fault tests drive them with: a
publisher that retries every append with its event id until some node acknowledges it, and
followers that stream one user each and move to another node whenever theirs goes away,
resuming with the cursor of the last event they processed, as docs/PROTOCOL.md says a client does.
"""
import asyncio
import json
import pathlib
import subprocess
import threading
import time

import requests
import websockets

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "tidings"
PORT = 8080


class Node:
    def __init__(self, site, host, postgres_urls, secret_file):
        self.site, self.host = site, host
        self.arguments = ["serve", "--postgres", ",".join(postgres_urls), "--jwt-secret-file", secret_file,
                          "--host", site.address(host), "--port", PORT, "--log-level", "info"]
        self.base = f"http://{site.address(host)}:{PORT}"
        self.ws = f"ws://{site.address(host)}:{PORT}/v1/stream"
        self.log = []
        self.start()

    def start(self):
        self.process = self.site.spawn(self.host, BINARY, *self.arguments, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"node on {self.host} did not start: {line!r} {self.process.stderr.read()}")
        threading.Thread(target=self._keep_log, args=(self.process,), daemon=True).start()

    def _keep_log(self, process):
        for line in process.stderr:
            self.log.append(line)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)

    def metric(self, name):
        text = requests.get(self.base + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def wait_for_acknowledged(acknowledged, count, timeout, what):
    """Polls until `acknowledged` (filled by another thread) holds `count` entries."""
    deadline = time.monotonic() + timeout
    while len(acknowledged) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acknowledged) >= count, f"only {len(acknowledged)} of {count} {what} acknowledged"


def token(postgres_url, secret_file, role, sub):
    return subprocess.run(
        [str(BINARY), "token", "--postgres", postgres_url, "--jwt-secret-file", str(secret_file), "--role", role,
         "--sub", sub, "--ttl", "2h"], check=True, capture_output=True, text=True).stdout.strip()


class Publisher:
    """Appends `notification.created` events for `users` in turn, one at a time, through the
    nodes in turn; a failed append (503, a lost connection, no answer) is retried with the same
    event id on the next node, so it is appended once whatever happened to the first try."""

    def __init__(self, nodes, token, users, prefix="e"):
        self.nodes, self.token, self.users, self.prefix = nodes, token, users, prefix
        self.acknowledged = {}  # event id -> (seq, user)
        self.acknowledged_at = []  # time.monotonic() of each acknowledgement, in order
        self.statuses = {}  # status or error kind -> count
        self.stopping = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _note(self, kind):
        self.statuses[kind] = self.statuses.get(kind, 0) + 1

    def _run(self):
        turn = 0
        avoided = {}  # host -> until when
        while not self.stopping.is_set():
            index = self.count
            user = self.users[index % len(self.users)]
            event = {"type": "notification.created", "user_id": user, "id": f"{self.prefix}-{index}",
                     "data": {"notification_id": f"{self.prefix}-{index}", "title": f"Event {index}"}}
            while not self.stopping.is_set():
                node = self.nodes[turn % len(self.nodes)]
                turn += 1
                # As a load balancer does: a node that just failed is left alone for a while.
                if avoided.get(node.host, 0) > time.monotonic():
                    time.sleep(0.01)
                    continue
                try:
                    # A connection per append: one to a node that was cut off fails to connect
                    # within a second, where a kept-alive one would wait for its answer.
                    reply = requests.post(node.base + "/v1/events", json=event, timeout=(1, 15),
                                          headers={"Authorization": f"Bearer {self.token}", "Connection": "close"})
                except requests.RequestException:
                    self._note("connection")
                    avoided[node.host] = time.monotonic() + 5
                    continue
                self._note(reply.status_code)
                if reply.status_code in (200, 201):
                    result = reply.json()["results"][0]
                    self.acknowledged[event["id"]] = (result["event"]["seq"], user)
                    self.acknowledged_at.append(time.monotonic())
                    break
                if reply.status_code < 500:
                    raise AssertionError(f"append refused: {reply.status_code} {reply.text}")
                time.sleep(0.05)
            self.count += 1
            time.sleep(0.01)

    def wait_for(self, count, timeout=60):
        wait_for_acknowledged(self.acknowledged, count, timeout, "appends")

    def first_acknowledged_after(self, moment):
        """Seconds from `moment` (time.monotonic()) to the first acknowledgement after it."""
        return next((at - moment for at in self.acknowledged_at if at > moment), None)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=60)


class Batches:
    """Keeps one node busy with batch appends for users nobody follows, from a few threads at
    once, so that its group transactions follow each other with hardly a pause: a fault that
    strikes the node then finds it holding the log's head. Counts what was acknowledged; what
    failed is not retried (it may or may not be in the log)."""

    def __init__(self, node, token, prefix, threads=4, size=200):
        self.node, self.token, self.prefix, self.size = node, token, prefix, size
        self.acknowledged = {}  # event id -> seq
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self, thread):
        batch = 0
        while not self.stopping.is_set():
            ids = [f"{self.prefix}-{thread}-{batch}-{index}" for index in range(self.size)]
            events = [{"type": "notification.created", "user_id": f"load-{index % 50}", "id": event_id,
                       "data": {"notification_id": event_id, "title": "load"}} for index, event_id in enumerate(ids)]
            batch += 1
            try:
                reply = requests.post(self.node.base + "/v1/events", json={"events": events}, timeout=(1, 5),
                                      headers={"Authorization": f"Bearer {self.token}"})
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if reply.status_code in (200, 201):
                for result in reply.json()["results"]:
                    self.acknowledged[result["event"]["id"]] = result["event"]["seq"]

    def wait_for(self, count, timeout=30):
        wait_for_acknowledged(self.acknowledged, count, timeout, "batch events")

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


class Follower:
    """Streams `user` from the nodes, one at a time, in order. Every event it processes must be
    the next of its stream (`stream_seq` one more than the last, for this user); a `reset`
    starts a new run of the stream at the head it names."""

    def __init__(self, user, token, nodes, first=0):
        self.user, self.token, self.nodes = user, token, nodes
        self.turn = first
        self.runs = [[]]  # runs of (stream_seq, seq, event id), a new one after each reset
        self.resets = []
        self.closes = []
        self.problems = []
        self.cursor = None
        self.connected = threading.Event()

    async def follow(self, stop):
        while not stop.is_set():
            node = self.nodes[self.turn % len(self.nodes)]
            self.turn += 1
            try:
                async with websockets.connect(node.ws, open_timeout=5, close_timeout=2) as socket:
                    await socket.send(json.dumps(
                        {"type": "hello", "token": self.token, "stream": "user", "user_id": self.user,
                         "cursor": self.cursor}))
                    while not stop.is_set():
                        try:
                            text = await asyncio.wait_for(socket.recv(), 0.5)
                        except asyncio.TimeoutError:
                            continue
                        self._handle(json.loads(text))
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as error:
                self.closes.append(type(error).__name__)
            await asyncio.sleep(0.2)

    def _handle(self, message):
        kind = message["type"]
        if kind == "caught_up":
            self.connected.set()
        elif kind == "reset":
            self.resets.append(message["reason"])
            self.cursor = message["head"]
            self.runs.append([])
            self.connected.set()
        elif kind == "event":
            event = message["event"]
            run = self.runs[-1]
            if event["user_id"] != self.user:
                self.problems.append(f"{self.user} got an event of {event['user_id']}")
            elif run and event["stream_seq"] != run[-1][0] + 1:
                self.problems.append(f"{self.user}: stream_seq {event['stream_seq']} after {run[-1][0]}")
            run.append((event["stream_seq"], event["seq"], event["id"]))
            self.cursor = event["cursor"]

    @property
    def last_stream_seq(self):
        return self.runs[-1][-1][0] if self.runs[-1] else 0


class Followers:
    """Runs followers on an event loop of their own thread."""

    def __init__(self, followers):
        self.followers = followers
        self.stop_event = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.gather(*(f.follow(self.stop_event) for f in self.followers)))

    def wait(self, condition, timeout=60, what="the followers", detail=lambda: ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} did not get there in {timeout} s {detail()}")

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
