"""The HTTP side: the inbox calls, publishing with client-made ids and retries, and any other
route, in an asyncio client and a blocking one that share their rules."""
from __future__ import annotations

import asyncio
import inspect
import time
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote, urlencode

import httpx

from ._support import TidingsError, TokenSource, backoff_delay, new_event_id, token_expiry

if TYPE_CHECKING:
    from ._stream import StateCallback, TidingsStream
    from ._support import CursorStore

JSON = dict[str, Any]
"""A JSON object as the server sends it."""


class _Rules:
    """What both clients share: the server, the token, and how requests and answers look."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        get_token: TokenSource | None = None,
        timeout: float = 10.0,
        retries: int = 6,
    ) -> None:
        if token is None and get_token is None:
            raise TypeError("give token or get_token")
        self.url = url.rstrip("/")
        self.stream_url = "ws" + self.url[len("http"):] + "/v1/stream" if self.url.startswith("http") else self.url
        self.timeout = timeout
        self.retries = retries
        self._token = token
        self._get_token = get_token
        self._cached: str | None = None
        self._http = self._open_http(timeout)

    def _open_http(self, timeout: float) -> Any:
        raise NotImplementedError

    @property
    def refreshes_tokens(self) -> bool:
        """True when the client can get a new token (it has `get_token`)."""
        return self._get_token is not None

    def _needs_token(self, fresh: bool) -> bool:
        if self._cached is None or fresh:
            return True
        expiry = token_expiry(self._cached)
        return expiry is not None and expiry - time.time() < 30

    @staticmethod
    def _user_path(user_id: str, route: str, **parameters: object) -> str:
        query = {key: str(value) for key, value in parameters.items() if value is not None}
        return f"/v1/users/{quote(user_id, safe='')}/{route}" + (f"?{urlencode(query)}" if query else "")

    @staticmethod
    def _with_ids(events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """The body to send, every event with an id (made here when it had none)."""
        if isinstance(events, Mapping):
            return {**events, "id": events.get("id") or new_event_id()}
        return {"events": [{**event, "id": event.get("id") or new_event_id()} for event in events]}

    @staticmethod
    def _results(answer: JSON) -> list[JSON]:
        results: list[JSON] = answer["results"]
        return results

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json() if response.content else None
        error: Any = None
        try:
            error = response.json().get("error")
        except ValueError:
            pass
        if isinstance(error, dict) and "code" in error:
            raise TidingsError(
                str(error["code"]), str(error.get("message", "")), status=response.status_code, index=error.get("index"))
        code = "unavailable" if response.status_code == 503 else "http"
        raise TidingsError(code, f"the server answered {response.status_code}", status=response.status_code)

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """httpx's failures to reach the server, as TidingsError `timeout` or `network`."""
        try:
            yield
        except httpx.TimeoutException as error:
            raise TidingsError("timeout", f"no answer within {self.timeout} s") from error
        except httpx.HTTPError as error:
            raise TidingsError("network", f"the server cannot be reached ({error})") from error

    def _retry_delay(self, error: TidingsError, attempt: int) -> float:
        """The wait before trying again after `attempt` (0 the first) failed with `error`.
        Raises `error` itself when it is not worth a retry: a 503, a timeout and a network
        failure are, any other answer is not, and `retries` bounds them."""
        if not (error.status == 503 or error.code in ("network", "timeout")) or attempt >= self.retries:
            raise error
        return backoff_delay(attempt)


class AsyncTidingsClient(_Rules):
    """A client of one server for asyncio: streams, the inbox calls and publishing.

    `get_token` (a plain or async callable) is asked for a token when the client has none, when
    the one it gave expires within 30 s, and when the server refuses it."""

    _http: httpx.AsyncClient

    def _open_http(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncTidingsClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def token(self, *, fresh: bool = False) -> str:
        """The token to send: the fixed one, or `get_token`'s (asked again when `fresh`)."""
        if self._get_token is None:
            assert self._token is not None
            return self._token
        if self._needs_token(fresh):
            value = self._get_token()
            self._cached = await value if inspect.isawaitable(value) else value
        assert self._cached is not None
        return self._cached

    def stream(
        self,
        cursor_store: CursorStore,
        *,
        stream: str = "user",
        user_id: str | None = None,
        on_state: StateCallback | None = None,
        refresh_before_expiry: float = 30.0,
        queue_size: int = 1000,
    ) -> TidingsStream:
        """A stream of `GET /v1/stream`, iterated with `async for`; see `TidingsStream`."""
        from ._stream import TidingsStream

        return TidingsStream(
            self, cursor_store, stream=stream, user_id=user_id, on_state=on_state,
            refresh_before_expiry=refresh_before_expiry, queue_size=queue_size)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Calls any route and returns the answer's JSON; raises TidingsError."""
        headers = {"Authorization": f"Bearer {await self.token()}"}
        with self._transport_errors():
            response = await self._http.request(method, self.url + path, json=body, headers=headers)
        return self._answer(response)

    async def unread(self, user_id: str, *, limit: int | None = None) -> JSON:
        """`GET /v1/users/{user_id}/unread`: the counts, the oldest unread notifications, the head."""
        answer: JSON = await self.request("GET", self._user_path(user_id, "unread", limit=limit))
        return answer

    async def notifications(
        self, user_id: str, *, before: str | None = None, state: str | None = None, kind: str | None = None,
        limit: int | None = None,
    ) -> JSON:
        """`GET /v1/users/{user_id}/notifications`: newest first, with their states."""
        path = self._user_path(user_id, "notifications", before=before, state=state, kind=kind, limit=limit)
        answer: JSON = await self.request("GET", path)
        return answer

    async def user_events(self, user_id: str, *, after: str | None = None, limit: int | None = None) -> JSON:
        """`GET /v1/users/{user_id}/events`: a page of the user stream after `after`."""
        answer: JSON = await self.request("GET", self._user_path(user_id, "events", after=after, limit=limit))
        return answer

    async def mark(self, user_id: str, change: Mapping[str, Any]) -> JSON:
        """`POST /v1/users/{user_id}/mark`: `{"change", "notification_ids"}` or `{"change", "all": True, ...}`."""
        answer: JSON = await self.request("POST", self._user_path(user_id, "mark"), dict(change))
        return answer

    async def mark_read(self, user_id: str, notification_ids: Iterable[str]) -> JSON:
        """`POST /v1/users/{user_id}/read` with these ids."""
        body = {"notification_ids": list(notification_ids)}
        answer: JSON = await self.request("POST", self._user_path(user_id, "read"), body)
        return answer

    async def publish(self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[JSON]:
        """Appends one event or a batch; one result per event, `{"status", "event"?}`. Events
        without an id get one here, before the first try, so a retry after a lost answer is a
        `duplicate`. Retries, with back-off, on 503, timeouts and network failures only."""
        body = self._with_ids(events)
        attempt = 0
        while True:
            try:
                return self._results(await self.request("POST", "/v1/events", body))
            except TidingsError as error:
                await asyncio.sleep(self._retry_delay(error, attempt))
                attempt += 1


class TidingsClient(_Rules):
    """The blocking client, for publishing from code that is not asyncio (a worker, a script, a
    synchronous web framework): the inbox calls and publishing, with the same rules."""

    _http: httpx.Client

    def _open_http(self, timeout: float) -> httpx.Client:
        return httpx.Client(timeout=timeout)

    def __enter__(self) -> TidingsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def token(self, *, fresh: bool = False) -> str:
        if self._get_token is None:
            assert self._token is not None
            return self._token
        if self._needs_token(fresh):
            value = self._get_token()
            if inspect.isawaitable(value):
                raise TypeError("the blocking client needs a plain get_token, not an async one")
            self._cached = value
        assert self._cached is not None
        return self._cached

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}"}
        with self._transport_errors():
            response = self._http.request(method, self.url + path, json=body, headers=headers)
        return self._answer(response)

    def unread(self, user_id: str, *, limit: int | None = None) -> JSON:
        answer: JSON = self.request("GET", self._user_path(user_id, "unread", limit=limit))
        return answer

    def notifications(
        self, user_id: str, *, before: str | None = None, state: str | None = None, kind: str | None = None,
        limit: int | None = None,
    ) -> JSON:
        path = self._user_path(user_id, "notifications", before=before, state=state, kind=kind, limit=limit)
        answer: JSON = self.request("GET", path)
        return answer

    def mark(self, user_id: str, change: Mapping[str, Any]) -> JSON:
        answer: JSON = self.request("POST", self._user_path(user_id, "mark"), dict(change))
        return answer

    def publish(self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[JSON]:
        """As `AsyncTidingsClient.publish`, blocking."""
        body = self._with_ids(events)
        attempt = 0
        while True:
            try:
                return self._results(self.request("POST", "/v1/events", body))
            except TidingsError as error:
                time.sleep(self._retry_delay(error, attempt))
                attempt += 1
