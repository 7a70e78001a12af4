"""docs/CLIENTS.md's scenarios, run by the Python client against a real `tidings serve`:
    PYTHONPATH=clients/python/src python3 -m pytest -q clients/python/tests
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import Any, Awaitable, Callable

import pytest

from harness import FaultProxy, Server, created, wait_for
from tidings_client import (
    AsyncTidingsClient, Counts, Event, MemoryCursorStore, Reset, TidingsClient, TidingsError, TidingsStream,
    backoff_delay, backoff_window,
)


class Collector:
    """Iterates a stream in a task of its own, keeping what it yields and the states it reports."""

    def __init__(self, client: AsyncTidingsClient, store: Any = None, **options: Any) -> None:
        self.items: list[Event | Reset] = []
        self.states: list[tuple[str, dict[str, Any]]] = []
        self.error: TidingsError | None = None
        self.stream: TidingsStream = client.stream(
            store or MemoryCursorStore(), on_state=lambda state, detail: self.states.append((state, dict(detail))),
            **options)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
        except TidingsError as error:
            self.error = error

    @property
    def events(self) -> list[Event]:
        return [item for item in self.items if isinstance(item, Event)]

    def ids(self) -> list[str]:
        return [event.data["notification_id"] for event in self.events]

    def state_names(self) -> list[str]:
        return [state for state, _ in self.states]

    async def close(self) -> None:
        await self.stream.aclose()
        self.task.cancel()


def run(body: Callable[[Server], Awaitable[None]]) -> None:
    server = Server()
    try:
        asyncio.run(body(server))
    finally:
        server.stop()


def test_1_a_first_connect_replays_everything_then_goes_live() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("publisher", "backend")) as publisher, \
                AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            await publisher.publish([created("alice", f"n-{n}") for n in range(1, 6)])
            collector = Collector(alice)
            await wait_for(lambda: collector.stream.state == "live", "live")
            assert collector.ids() == ["n-1", "n-2", "n-3", "n-4", "n-5"]
            assert collector.state_names() == ["connecting", "replaying", "live"]
            assert collector.states[2][1] == {"replayed": 5}
            await publisher.publish(created("alice", "n-6"))
            await wait_for(lambda: len(collector.events) == 6, "n-6 live")
            # The loop took n-6 and asked for the next item: n-6 is processed, its cursor saved.
            await wait_for(lambda: collector.stream.cursor == collector.events[5].cursor, "n-6's cursor saved")
            assert collector.stream.counts == Counts(6, 6, 0)
            await collector.close()
    run(body)


def test_2_a_stream_resumes_after_the_processed_cursor() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("publisher", "backend")) as publisher, \
                AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            await publisher.publish([created("alice", f"n-{n}") for n in range(1, 6)])
            third = (await alice.user_events("alice", limit=3))["next_cursor"]
            store = MemoryCursorStore(third)
            collector = Collector(alice, store)
            await wait_for(lambda: collector.stream.state == "live", "live")
            assert collector.ids() == ["n-4", "n-5"]
            assert store.cursor == collector.stream.cursor
            await collector.close()
            # What was processed stays processed: a new stream from the store replays nothing.
            again = Collector(alice, store)
            await wait_for(lambda: again.stream.state == "live", "live again")
            assert again.events == []
            await publisher.publish(created("alice", "n-6"))
            await wait_for(lambda: again.ids() == ["n-6"], "n-6 only")
            await again.close()
    run(body)


def test_3_the_server_is_killed_mid_stream_and_comes_back() -> None:
    server = Server()
    directory, port, secret = server.directory, server.port, server.secret

    async def body() -> None:
        nonlocal server
        async with AsyncTidingsClient(f"http://127.0.0.1:{port}", token=server.token("publisher", "b")) as publisher, \
                AsyncTidingsClient(f"http://127.0.0.1:{port}", token=server.token("user", "alice")) as alice:
            collector = Collector(alice)
            await wait_for(lambda: collector.stream.state == "live", "live")
            for n in range(20):
                await publisher.publish(created("alice", f"a-{n}"))
            server.kill()
            await wait_for(lambda: collector.stream.state == "reconnecting", "reconnecting")
            server = Server(directory, port=port, secret=secret)
            for n in range(20):
                await publisher.publish(created("alice", f"b-{n}"))
            await wait_for(lambda: len(collector.events) >= 40, "all 40 after the restart", 30)
            assert collector.ids() == [f"a-{n}" for n in range(20)] + [f"b-{n}" for n in range(20)]
            assert [event.envelope["stream_seq"] for event in collector.events] == list(range(1, 41))
            await collector.close()
    try:
        asyncio.run(body())
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_4_a_replaced_store_is_a_reset_then_live_events() -> None:
    first = Server()
    port, secret = first.port, first.secret
    second: Server | None = None

    async def body() -> None:
        nonlocal second
        url = f"http://127.0.0.1:{port}"
        async with AsyncTidingsClient(url, token=first.token("publisher", "b")) as publisher, \
                AsyncTidingsClient(url, token=first.token("user", "alice")) as alice:
            await publisher.publish(created("alice", "old-1"))
            collector = Collector(alice)
            await wait_for(lambda: collector.stream.state == "live", "live")
            first.stop(keep=True)
            second = Server(port=port, secret=secret)
            await wait_for(lambda: any(isinstance(item, Reset) for item in collector.items), "the reset", 30)
            reset = next(item for item in collector.items if isinstance(item, Reset))
            assert reset.reason == "epoch_mismatch"
            assert reset.counts == Counts(0, 0, 0)
            await publisher.publish(created("alice", "new-1"))
            await wait_for(lambda: "new-1" in collector.ids(), "new-1 live")
            assert collector.ids() == ["old-1", "new-1"]
            await collector.close()
    try:
        asyncio.run(body())
    finally:
        first.stop()
        if second is not None:
            second.stop()
        shutil.rmtree(first.directory, ignore_errors=True)


@pytest.mark.parametrize("refresh_before_expiry", [0.0, 30.0])
def test_5_a_token_that_expires_on_an_open_connection_is_renewed(refresh_before_expiry: float) -> None:
    async def body(server: Server) -> None:
        asked: list[str] = []

        async def get_token() -> str:
            # The server allows 30 s past exp: these tokens have about two seconds left.
            asked.append(server.token("user", "alice", -28))
            return asked[-1]
        async with AsyncTidingsClient(server.url, token=server.token("publisher", "backend")) as publisher, \
                AsyncTidingsClient(server.url, get_token=get_token) as alice:
            collector = Collector(alice, refresh_before_expiry=refresh_before_expiry)
            await wait_for(lambda: collector.stream.state == "live", "live")
            for n in range(12):
                await publisher.publish(created("alice", f"t-{n}"))
                await asyncio.sleep(0.3)
            await wait_for(lambda: len(collector.events) == 12, "every event across the renewal", 15)
            assert len(asked) >= 2
            assert collector.ids() == [f"t-{n}" for n in range(12)]
            assert collector.error is None
            await collector.close()
    run(body)


def test_5_a_fixed_token_that_expires_stops_the_stream() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("user", "alice", -29)) as alice:
            collector = Collector(alice)
            await wait_for(lambda: collector.error is not None, "the error", 15)
            assert collector.error is not None
            assert (collector.error.code, collector.error.close_code) == ("unauthorized", 4401)
            assert collector.stream.state == "stopped"
    run(body)


def test_6_back_off_waits_stay_within_their_windows() -> None:
    for attempt in range(12):
        low, high = backoff_window(attempt)
        assert (low, high) == (0.0, min(20.0, 0.5 * 2 ** attempt))
        assert backoff_delay(attempt, lambda: 0.0) == 0.0
        assert backoff_delay(attempt, lambda: 1.0) == high

    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            collector = Collector(alice)
            await wait_for(lambda: collector.stream.state == "live", "live")
            server.kill()
            await wait_for(lambda: collector.state_names().count("reconnecting") >= 4, "four tries", 20)
            waits = [detail for state, detail in collector.states if state == "reconnecting"]
            for attempt, detail in enumerate(waits[:4]):
                assert detail["attempt"] == attempt
                low, high = backoff_window(attempt)
                assert low <= detail["delay"] <= high
            await collector.close()
    run(body)


def test_7_a_change_over_the_stream_is_acked_after_its_event() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("publisher", "backend")) as publisher, \
                AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            await publisher.publish([created("alice", "n-1"), created("alice", "n-2")])
            collector = Collector(alice)
            await wait_for(lambda: collector.stream.state == "live", "live")
            ack = await collector.stream.mark({"change": "archive", "notification_ids": ["n-1"]})
            assert (ack.status, ack.counts) == ("ok", Counts(1, 1, 1))
            # The event came before its ack: it is in the stream's hands already.
            await wait_for(lambda: [e.type for e in collector.events][-1:] == ["notification.archived"], "the event")
            read = await collector.stream.read(["n-2"])
            assert read.counts == Counts(0, 0, 1)
            assert (await collector.stream.read(["n-2"])).status == "noop"
            with pytest.raises(TidingsError) as refused:
                await collector.stream.mark({"change": "snooze", "notification_ids": ["n-2"]})
            assert refused.value.code == "closed"
            await wait_for(lambda: collector.error is not None, "the stream's error")
            assert collector.error is not None
            assert collector.error.message == "a snooze needs until: an RFC 3339 time later than now"
    run(body)


def test_8_two_connections_of_one_user_stay_in_step() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("publisher", "backend")) as publisher, \
                AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            await publisher.publish([created("alice", "n-1"), created("alice", "n-2")])
            one, two = Collector(alice), Collector(alice)
            await wait_for(lambda: one.stream.state == "live" and two.stream.state == "live", "both live")
            ack = await one.stream.mark({"change": "read", "notification_ids": ["n-2"]})
            await wait_for(lambda: len(two.events) == 3, "the read on the other connection")
            assert two.events[2].type == "notification.read"
            assert two.events[2].counts == ack.counts
            answer = await alice.mark("alice", {"change": "seen", "all": True})
            assert answer["changed"] == ["n-1"]
            await wait_for(lambda: len(one.events) == 4 and len(two.events) == 4, "the seen_all on both")
            assert one.events[3].counts == two.events[3].counts == Counts(1, 0, 0)
            await one.close()
            await two.close()
    run(body)


def test_9_a_publisher_whose_answer_is_lost_retries_and_gets_duplicate() -> None:
    server = Server()
    proxy = FaultProxy(server, drop_answers=1)
    try:
        # The blocking publisher, as a worker or a script uses it.
        with TidingsClient(proxy.url, token=server.token("publisher", "backend")) as publisher:
            results = publisher.publish(created("alice", "n-1"))
        assert results[0]["status"] == "duplicate"
        assert proxy.log(2) == ["dropped 201", "relayed 200"]
        with TidingsClient(server.url, token=server.token("admin", "root")) as admin:
            assert admin.request("GET", "/v1/stats")["events"] == 1
    finally:
        proxy.stop()
        server.stop()


def test_10_503_is_retried_and_400_is_not() -> None:
    async def body(server: Server) -> None:
        proxy = FaultProxy(server, answer_503=2)
        try:
            async with AsyncTidingsClient(proxy.url, token=server.token("publisher", "backend")) as publisher:
                results = await publisher.publish([created("alice", "n-1"), created("alice", "n-2")])
                assert [result["status"] for result in results] == ["appended", "appended"]
                assert proxy.log(3) == ["503", "503", "relayed 201"]
                with pytest.raises(TidingsError) as refused:
                    await publisher.publish({"type": "notification.created", "user_id": "alice", "data": {"title": "x"}})
                assert (refused.value.status, refused.value.code) == (400, "bad_request")
                assert "notification_id" in refused.value.message
                assert proxy.log(4)[3] == "relayed 400"
                noop = await publisher.publish(
                    {"type": "notification.read", "user_id": "alice", "data": {"notification_id": "gone"}})
                assert noop == [{"status": "noop"}]
        finally:
            proxy.stop()
    run(body)


def test_streams_that_may_not_be_opened_stop_with_the_servers_reason() -> None:
    async def body(server: Server) -> None:
        async with AsyncTidingsClient(server.url, token=server.token("user", "alice")) as alice:
            everything = Collector(alice, stream="all")
            await wait_for(lambda: everything.error is not None, "forbidden")
            assert everything.error is not None
            assert (everything.error.code, everything.error.close_code) == ("forbidden", 4403)
            bad = Collector(alice, MemoryCursorStore("not-a-cursor"))
            await wait_for(lambda: bad.error is not None, "invalid cursor")
            assert bad.error is not None and bad.error.code == "invalid_cursor"
            with pytest.raises(TidingsError) as refused:
                await alice.unread("bob")
            assert (refused.value.status, refused.value.code) == (403, "forbidden")
    run(body)


def test_a_file_cursor_store_survives_a_new_process() -> None:
    from tidings_client import FileCursorStore

    directory = tempfile.mkdtemp()
    try:
        store = FileCursorStore(f"{directory}/cursors/alice")
        assert store.load() is None
        store.save("abc")
        assert FileCursorStore(f"{directory}/cursors/alice").load() == "abc"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
