"""One stream of `GET /v1/stream` as an async iterator, kept open across drops, restarts,
resets and token expiry, yielding each event once and in order (docs/CLIENTS.md).

A reader task receives the connection's messages into a bounded queue; the iterator hands them
to the application. An event counts as processed when the application asks for the next item,
and only then is its cursor saved, so a reconnect resumes from the last processed event: the
server replays what came after it, and an event at or before the last one handed out is dropped.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ._support import CursorStore, TidingsError, backoff_delay, token_expiry

if TYPE_CHECKING:
    from ._http import AsyncTidingsClient

StateCallback = Callable[[str, Mapping[str, Any]], None]
"""Told each state: `connecting`, `replaying`, `live`, `reconnecting`, `stopped`, with details
(`replayed`, `reset`, `delay`, `reason`, `attempt`, `error`)."""


@dataclass(frozen=True)
class Counts:
    """The user's counts as of one position of the stream."""

    unread: int
    unseen: int
    archived: int

    @staticmethod
    def of(message: Mapping[str, Any]) -> Counts | None:
        if "unread_count" not in message:
            return None
        return Counts(message["unread_count"], message["unseen_count"], message["archived_count"])


@dataclass(frozen=True)
class Event:
    """One event of the stream (`envelope` as PROTOCOL.md shows it) with the counts after it."""

    envelope: dict[str, Any]
    counts: Counts | None

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.envelope["data"]
        return data

    @property
    def cursor(self) -> str:
        return str(self.envelope["cursor"])


@dataclass(frozen=True)
class Reset:
    """The stream goes on from another store's head (a restore, a replaced store): reload what
    the application shows."""

    reason: str
    head: str
    counts: Counts | None


@dataclass(frozen=True)
class Ack:
    """The answer to a change sent over the stream: `ok` (something changed) or `noop`."""

    status: str
    counts: Counts | None


@dataclass(frozen=True)
class _Queued:
    generation: int
    item: Union[Event, Reset, "_CaughtUp"]


@dataclass(frozen=True)
class _CaughtUp:
    cursor: str
    counts: Counts | None
    replayed: int


@dataclass(frozen=True)
class _Stopped:
    error: TidingsError


class TidingsStream:
    """`async for item in stream:` yields `Event`s and `Reset`s, in stream order, each once.

    The cursor of an event is saved (`cursor_store.save`) when the loop asks for the next item;
    leaving the loop keeps the last one unsaved, so it is delivered again next time. A stream that
    cannot go on (4403, 4400, a refused fresh token) raises TidingsError from the loop."""

    def __init__(
        self,
        client: AsyncTidingsClient,
        cursor_store: CursorStore,
        *,
        stream: str = "user",
        user_id: str | None = None,
        on_state: StateCallback | None = None,
        refresh_before_expiry: float = 30.0,
        queue_size: int = 1000,
    ) -> None:
        if stream not in ("user", "all"):
            raise ValueError(f'stream must be "user" or "all", not {stream!r}')
        self._client = client
        self._store = cursor_store
        self._stream = stream
        self._user_id = user_id
        self._on_state = on_state
        self._refresh_before_expiry = refresh_before_expiry
        self._queue: asyncio.Queue[_Queued | _Stopped] = asyncio.Queue(maxsize=queue_size)
        self._runner: asyncio.Task[None] | None = None
        self._generation = 0
        self._cursor: str | None = None
        self._loaded = False
        self._last_position: int | None = None
        self._handed: Event | Reset | None = None
        self._counts: Counts | None = None
        self._epoch: str | None = None
        self._state = "stopped"
        self._socket: Any = None
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._next_ref = 1
        self._fresh_token = False
        self._renew = False
        self._closed = False

    @property
    def state(self) -> str:
        """`connecting`, `replaying`, `live`, `reconnecting` or `stopped`."""
        return self._state

    @property
    def cursor(self) -> str | None:
        """The cursor of the last event the application processed."""
        return self._cursor

    @property
    def counts(self) -> Counts | None:
        """The user's counts as of that cursor (user streams)."""
        return self._counts

    @property
    def epoch(self) -> str | None:
        """The store's epoch as the last `welcome` named it."""
        return self._epoch

    def __aiter__(self) -> TidingsStream:
        return self

    async def __anext__(self) -> Event | Reset:
        if self._closed:
            raise StopAsyncIteration
        self._commit_handed()
        if not self._loaded:
            self._cursor = self._store.load()
            self._loaded = True
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())
        while True:
            queued = await self._queue.get()
            if isinstance(queued, _Stopped):
                self._closed = True
                raise queued.error
            if queued.generation != self._generation:
                continue  # an older connection's: the current one replays it from the cursor
            item = queued.item
            if isinstance(item, _CaughtUp):
                self._save(item.cursor, item.counts)
                self._set_state("live", {"replayed": item.replayed})
                continue
            if isinstance(item, Reset):
                self._last_position = None
                self._handed = item
                return item
            position = int(item.envelope["seq" if self._stream == "all" else "stream_seq"])
            if self._last_position is not None and position <= self._last_position:
                continue
            self._last_position = position
            self._handed = item
            return item

    async def aclose(self) -> None:
        """Stops the stream; the last item handed out stays unsaved."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_pending(TidingsError("closed", "the stream stopped before the ack"))
        self._set_state("stopped", {})

    async def __aenter__(self) -> TidingsStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def mark(self, change: Mapping[str, Any], *, timeout: float | None = None) -> Ack:
        """Changes the stream user's notifications over the stream (the `mark` message, the body
        of `POST /v1/users/{user_id}/mark`); returns the ack, received after the events it
        caused."""
        return await self._send({"type": "mark", **change}, timeout)

    async def read(self, notification_ids: list[str], *, timeout: float | None = None) -> Ack:
        """Marks these notifications read over the stream."""
        return await self._send({"type": "read", "notification_ids": notification_ids}, timeout)

    # The connection

    async def _run(self) -> None:
        attempt = 0
        quick_retry = True
        while not self._closed:
            self._generation += 1
            generation = self._generation
            self._set_state("connecting", {})
            code, said, opened, error, replayed = 1006, "", False, None, 0
            try:
                token = await self._client.token(fresh=self._fresh_token)
                async with websockets.connect(
                    self._client.stream_url, open_timeout=self._client.timeout, max_size=None,
                ) as socket:
                    opened = True
                    self._socket = socket
                    hello: dict[str, Any] = {
                        "type": "hello", "token": token, "stream": self._stream, "cursor": self._cursor}
                    if self._user_id is not None:
                        hello["user_id"] = self._user_id
                    await socket.send(json.dumps(hello))
                    renewal = asyncio.get_running_loop().create_task(self._renew_before_expiry(token, socket))
                    try:
                        async for raw in socket:
                            message = json.loads(raw)
                            kind = message.get("type")
                            if kind == "error":
                                error = message
                            elif kind == "welcome":
                                self._epoch = message.get("epoch")
                                self._fresh_token = False
                                quick_retry = True
                                self._set_state("replaying", {})
                            elif kind == "event":
                                if self._state == "replaying":
                                    replayed += 1
                                event = Event(message["event"], Counts.of(message))
                                await self._queue.put(_Queued(generation, event))
                            elif kind == "caught_up":
                                attempt = 0
                                await self._queue.put(
                                    _Queued(generation, _CaughtUp(message["cursor"], Counts.of(message), replayed)))
                            elif kind == "reset":
                                attempt = 0
                                reset = Reset(message["reason"], message["head"], Counts.of(message))
                                await self._queue.put(_Queued(generation, reset))
                                await self._queue.put(_Queued(generation, _CaughtUp(message["head"], reset.counts, 0)))
                            elif kind == "ack":
                                self._answer(message)
                    finally:
                        renewal.cancel()
                    code = socket.close_code or 1006
                    said = socket.close_reason or ""
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                said = closed.rcvd.reason if closed.rcvd is not None else ""
            except (OSError, InvalidHandshake, asyncio.TimeoutError) as failure:
                said = f"the connection could not be opened ({failure})"
            except TidingsError as failure:
                said = f"no token ({failure})"
            finally:
                self._socket = None
            self._fail_pending(TidingsError("closed", "the connection closed before the ack; the change may or may not have been made"))
            if self._closed:
                return
            reason = f"{error['code']}: {error['message']}" if error else said or f"closed with code {code}"
            if self._renew:
                self._renew = False
                self._fresh_token = True
                continue
            if code == 4401:
                if self._fresh_token:
                    await self._stop(TidingsError(
                        "unauthorized", f"the server refused a fresh token too ({reason})", status=401, close_code=code))
                    return
                self._fresh_token = True
                continue
            if code in (4403, 4400):
                default = "forbidden" if code == 4403 else "bad_request"
                code_name = str(error["code"]) if error else default
                message = str(error["message"]) if error else reason
                await self._stop(TidingsError(code_name, message, status=code - 4000, close_code=code))
                return
            if not opened and quick_retry:
                # A handshake refused on a reused connection succeeds at once on a new one.
                quick_retry = False
                continue
            delay = backoff_delay(attempt)
            self._set_state("reconnecting", {"delay": delay, "reason": reason, "attempt": attempt})
            attempt += 1
            await asyncio.sleep(delay)

    async def _renew_before_expiry(self, token: str, socket: Any) -> None:
        """Renews the connection with a new token shortly before this one expires."""
        expiry = token_expiry(token)
        if expiry is None or not self._refresh_before_expiry or not self._client.refreshes_tokens:
            return
        left = expiry - time.time()
        await asyncio.sleep(max(1.0, left - min(self._refresh_before_expiry, left / 2)))
        self._renew = True
        await socket.close(1000)

    async def _stop(self, error: TidingsError) -> None:
        self._set_state("stopped", {"error": error})
        await self._queue.put(_Stopped(error))

    # Acks

    async def _send(self, message: dict[str, Any], timeout: float | None) -> Ack:
        socket = self._socket
        if socket is None or self._state not in ("replaying", "live"):
            raise TidingsError("not_connected", "the stream is not connected; try again when it is live")
        ref = f"c{self._next_ref}"
        self._next_ref += 1
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        await socket.send(json.dumps({**message, "ref": ref}))
        try:
            return await asyncio.wait_for(future, timeout or self._client.timeout)
        except asyncio.TimeoutError:
            raise TidingsError("timeout", "no ack in time; the change may or may not have been made") from None
        finally:
            self._pending.pop(ref, None)

    def _answer(self, message: Mapping[str, Any]) -> None:
        future = self._pending.pop(str(message.get("ref")), None)
        if future is None or future.done():
            return
        if message.get("status") == "forbidden":
            future.set_exception(TidingsError("forbidden", "this stream may not change these notifications", status=403))
        else:
            future.set_result(Ack(str(message["status"]), Counts.of(message)))

    def _fail_pending(self, error: TidingsError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    # The cursor

    def _commit_handed(self) -> None:
        handed, self._handed = self._handed, None
        if isinstance(handed, Event):
            self._save(handed.cursor, handed.counts)
        elif isinstance(handed, Reset):
            self._save(handed.head, handed.counts)

    def _save(self, cursor: str, counts: Counts | None) -> None:
        self._cursor = cursor
        self._store.save(cursor)
        if counts is not None:
            self._counts = counts

    def _set_state(self, state: str, detail: Mapping[str, Any]) -> None:
        self._state = state
        if self._on_state is not None:
            self._on_state(state, detail)
