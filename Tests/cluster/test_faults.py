"""Three Tidings nodes on PostgreSQL with a streaming standby, each on a host of its own (network
namespaces), under steady appends and live streams on every node, through node, network and
database faults. What must hold at the end: every acknowledged append in the log once at its
acknowledged seq, every stream gapless and without duplicates, and the chain, blocks and
projection verified; and, when an asynchronous standby that lost commits takes over, every
client holding a cursor from the lost history is reset, never handed someone else's events.

`tools/failover` runs the same with more load and rounds, and writes its figures.
"""
import json
import os
import pathlib
import secrets
import tempfile
import time

import pytest
import requests

from cluster_clients import Batches, Follower, Followers, Node, Publisher, token
from postgres_hosts import PostgresHost
from netns_site import Site, available

pytestmark = pytest.mark.skipif(not available(), reason="network namespaces need root")

ROUNDS = int(os.environ.get("TIDINGS_FAILOVER_ROUNDS", "1"))
USERS = [f"user-{index}" for index in range(6)]
OUTPUT = pathlib.Path(__file__).resolve().parents[2] / "test-output" / "cluster"


class Cluster:
    def __init__(self, synchronous):
        self.site = Site(["pg1", "pg2", "n1", "n2", "n3"])
        self.closing = []
        try:
            self.primary = PostgresHost(self.site, "pg1")
            self.closing.append(self.primary)
            self.primary.psql("CREATE DATABASE tidings")
            self.standby = PostgresHost(self.site, "pg2", primary=self.primary)
            self.closing.append(self.standby)
            if synchronous:
                self.primary.make_synchronous()
                self.wait_until(lambda: self.primary.psql(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "1", "a sync standby")
            self.secret = tempfile.NamedTemporaryFile("w", prefix="tidings-cluster-secret-", delete=False)
            self.secret.write(secrets.token_hex(32))
            self.secret.close()
            self.urls = [self.primary.url("tidings"), self.standby.url("tidings")]
            self.nodes = [Node(self.site, host, self.urls, self.secret.name) for host in ("n1", "n2", "n3")]
            self.publisher_token = token(self.urls[0], self.secret.name, "publisher", "backend")
            self.admin_token = token(self.urls[0], self.secret.name, "admin", "ops")
        except Exception:
            self.close()
            raise

    def user_token(self, user):
        return token(self.urls[0], self.secret.name, "user", user)

    @staticmethod
    def step(what):
        print(f"[{time.strftime('%H:%M:%S')}] {what}", flush=True)

    @staticmethod
    def wait_until(condition, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout} s")

    def get(self, node, path):
        reply = requests.get(node.base + path, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply

    def post(self, node, path):
        reply = requests.post(node.base + path, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def log(self, node):
        """Every event of the log, by seq, through `node`'s NDJSON export."""
        reply = requests.get(node.base + "/v1/events", timeout=120, headers={
            "Authorization": f"Bearer {self.admin_token}", "Accept": "application/x-ndjson"})
        assert reply.status_code == 200, reply.text
        return {event["seq"]: event for event in map(json.loads, reply.text.splitlines())}

    def close(self, name="cluster", failed=False):
        for node in getattr(self, "nodes", []):
            if node.process.poll() is None:
                node.kill()
        # Every node's log is kept in test-output/cluster/; a failed test prints their ends.
        OUTPUT.mkdir(parents=True, exist_ok=True)
        for node in getattr(self, "nodes", []):
            (OUTPUT / f"{name}-{node.host}.log").write_text("".join(node.log))
            if failed:
                print(f"--- the last lines of {node.host}'s log:\n" + "".join(node.log[-25:]))
        for host in reversed(self.closing):
            host.close()
        self.site.close()
        if hasattr(self, "secret"):
            os.unlink(self.secret.name)


def running(request, synchronous):
    cluster = Cluster(synchronous=synchronous)
    yield cluster
    report = getattr(request.node, "report_call", None)
    cluster.close(request.node.name, failed=report is not None and report.failed)


@pytest.fixture
def synchronous_cluster(request):
    yield from running(request, synchronous=True)


@pytest.fixture
def asynchronous_cluster(request):
    yield from running(request, synchronous=False)


def follow(cluster, users):
    followers = [Follower(user, cluster.user_token(user), cluster.nodes, first=index)
                 for index, user in enumerate(users)]
    running = Followers(followers)
    running.wait(lambda: all(f.connected.is_set() for f in followers), what="every follower's first stream")
    return followers, running


def heads(cluster):
    """Each user's stream head, as the log has it."""
    counts = {}
    for event in cluster.log(cluster.nodes[0]).values():
        counts[event["user_id"]] = max(counts.get(event["user_id"], 0), event["stream_seq"])
    return counts


def test_nodes_ride_out_node_network_and_database_faults(synchronous_cluster):
    cluster = synchronous_cluster
    followers, running = follow(cluster, USERS)
    publisher = Publisher(cluster.nodes, cluster.publisher_token, USERS)
    loaded = {}  # event id -> seq, of the batches acknowledged during the cuts
    try:
        restarts = []  # seconds from a database restart to the next acknowledged append
        for index in range(ROUNDS):
            publisher.wait_for(len(publisher.acknowledged) + 30)
            cluster.step("SIGKILL n1: its clients resume on the others")
            cluster.nodes[0].kill()
            publisher.wait_for(len(publisher.acknowledged) + 30)
            cluster.nodes[0].start()
            cluster.step("cut n2 off the network in the middle of its group commits, then mend it")
            # With n2 committing batch after batch, the cut most likely leaves one of its
            # transactions open on the server, holding the head every node's commits lock: the
            # server must end it, or no node appends again.
            batches = Batches(cluster.nodes[1], cluster.publisher_token, prefix=f"load{index}")
            batches.wait_for(2_000)
            cluster.site.cut("n2")
            batches.stop()
            publisher.wait_for(len(publisher.acknowledged) + 30)
            cluster.site.mend("n2")
            loaded.update(batches.acknowledged)
            cluster.step("restart PostgreSQL: appends answer 503 meanwhile, then recover")
            before = publisher.statuses.get(503, 0)
            cluster.primary.stop("immediate")
            cluster.wait_until(lambda: publisher.statuses.get(503, 0) > before, "503 while the database is down")
            cluster.primary.start()
            started = time.monotonic()
            publisher.wait_for(len(publisher.acknowledged) + 30)
            restarts.append(publisher.first_acknowledged_after(started))
        cluster.step("fail over to the synchronous standby: nothing acknowledged is lost")
        cluster.primary.kill()
        cluster.standby.promote()
        promoted = time.monotonic()
        publisher.wait_for(len(publisher.acknowledged) + 30, timeout=90)
        failover = publisher.first_acknowledged_after(promoted)
    finally:
        publisher.stop()
    expected = heads(cluster)
    running.wait(lambda: all(f.last_stream_seq == expected.get(f.user, 0) for f in followers), timeout=90,
                 what="every follower's head", detail=lambda: [
                     (f.user, f.last_stream_seq, expected.get(f.user), f.turn % 3, f.closes[-3:]) for f in followers])
    running.stop()

    log = cluster.log(cluster.nodes[1])
    for event_id, (seq, user) in publisher.acknowledged.items():
        assert log[seq]["id"] == event_id and log[seq]["user_id"] == user, f"acknowledged {event_id} at {seq}"
    for event_id, seq in loaded.items():
        assert log[seq]["id"] == event_id, f"acknowledged {event_id} at {seq}"
    assert sorted(log) == list(range(1, len(log) + 1))
    assert len({event["id"] for event in log.values()}) == len(log), "an event appended twice"
    for follower in followers:
        assert follower.problems == [], follower.problems
        assert follower.resets == [], f"{follower.user} was reset: {follower.resets}"
        seen = [stream_seq for stream_seq, _, _ in follower.runs[0]]
        assert seen == list(range(1, expected[follower.user] + 1)), f"{follower.user}: a gap or a duplicate"
    verify = cluster.get(cluster.nodes[2], "/v1/log/verify").json()
    assert verify["ok"] and verify["head_seq"] == len(log)
    assert cluster.post(cluster.nodes[2], "/v1/admin/projections/verify")["ok"]
    cluster.step(f"figures: {len(publisher.acknowledged)} appends acknowledged, {len(log)} events in the log, "
                 f"answers {publisher.statuses}, {sum(len(f.runs[0]) for f in followers)} events streamed, "
                 f"{sum(len(f.closes) for f in followers)} reconnects, none missed or twice; "
                 f"{len(loaded)} batch events acknowledged by the nodes that were cut; the first append acknowledged "
                 f"{', '.join(f'{s:.2f}' for s in restarts)} s after each database start and {failover:.2f} s after "
                 f"the standby's promotion")


def test_a_failover_that_loses_commits_resets_every_cursor_from_the_lost_history(asynchronous_cluster):
    cluster = asynchronous_cluster
    followers, running = follow(cluster, USERS)
    publisher = Publisher(cluster.nodes, cluster.publisher_token, USERS)
    try:
        publisher.wait_for(60)
        # The standby stops hearing from the primary; what is acknowledged from now on is lost
        # when the primary goes.
        cluster.step("cut the asynchronous standby off; the next commits reach only the primary")
        cluster.site.cut("pg2")
        kept = len(publisher.acknowledged)
        publisher.wait_for(kept + 40)
        publisher.stop()
        lost = dict(publisher.acknowledged)
        running.wait(lambda: sum(f.last_stream_seq for f in followers) >= len(lost), what="the lost events streamed")
        # Cursors from the lost history, held on to (a client that is away during the failover).
        held = {f.user: (f.cursor, f.last_stream_seq) for f in followers}
        cluster.step("kill the primary, promote the standby")
        cluster.primary.kill()
        cluster.site.mend("pg2")
        cluster.standby.promote()
        # The new history grows past every lost position, through the same nodes.
        publisher = Publisher(cluster.nodes, cluster.publisher_token, USERS, prefix="after")
        publisher.wait_for(80, timeout=90)
    finally:
        publisher.stop()
    expected = heads(cluster)
    running.wait(lambda: all(f.last_stream_seq == expected.get(f.user, 0) for f in followers), timeout=90,
                 what="every follower's new head")
    running.stop()

    log = cluster.log(cluster.nodes[0])
    survived = {event["id"] for event in log.values()}
    lost_ids = [event_id for event_id in lost if event_id not in survived]
    assert lost_ids, "the failover lost the commits the standby never received"
    for follower in followers:
        assert follower.problems == [], follower.problems
        # Every follower had streamed lost events: each was reset once, and its stream goes on
        # from the new head, each event its own user's.
        assert follower.resets and set(follower.resets) <= {"history_forked", "cursor_ahead"}, follower.resets
        final = follower.runs[-1]
        assert all(log[seq]["id"] == event_id for _, seq, event_id in final), "an event not in the new history"
    # A held cursor is refused once the new history has grown past its position, by the history
    # check (the position alone would pass), and before that as past the head.
    forked = 0
    for follower in followers:
        cursor, position = held[follower.user]
        reply = requests.get(f"{cluster.nodes[2].base}/v1/users/{follower.user}/events", params={"after": cursor},
                             headers={"Authorization": f"Bearer {cluster.admin_token}"}, timeout=30)
        assert reply.status_code == 409, reply.text
        message = reply.json()["error"]["message"]
        if expected[follower.user] >= position:
            assert "history of the log that was lost" in message, message
            forked += 1
        else:
            assert "past the head" in message, message
    assert forked > 0, "the new history grew past some lost position"
    forks = sum(node.metric("tidings_history_forks_total") for node in cluster.nodes)
    assert forks >= 1
    assert any("the log's history changed under this node" in line for node in cluster.nodes for line in node.log)
    verify = cluster.get(cluster.nodes[1], "/v1/log/verify").json()
    assert verify["ok"] and verify["head_seq"] == len(log)
    assert cluster.post(cluster.nodes[1], "/v1/admin/projections/verify")["ok"]
    resets = sorted(reason for f in followers for reason in f.resets)
    cluster.step(f"figures: {len(lost_ids)} acknowledged appends lost with the primary, {len(log)} events in the "
                 f"new log, resets {resets}, {int(forks)} nodes saw the fork, {forked} held cursors refused as a lost history")
