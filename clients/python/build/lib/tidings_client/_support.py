"""What the client's parts share: its error, the back-off, tokens' expiry, event ids and cursor
stores. docs/CLIENTS.md says what every Tidings client library does alike."""
from __future__ import annotations

import base64
import json
import os
import random
import tempfile
import uuid
from pathlib import Path
from typing import Awaitable, Callable, Protocol, Union

BACKOFF_FIRST = 0.5
"""The first wait of a back-off, in seconds."""
BACKOFF_MAX = 20.0
"""The ceiling of every wait, in seconds."""

TokenSource = Callable[[], Union[str, Awaitable[str]]]
"""A callable that gives a token, plainly or as an awaitable."""


class TidingsError(Exception):
    """A failure the application can act on: an HTTP error answer (`status` and the server's
    `code`), a stream closed for good (`close_code`), a timeout, or a network failure (`status`
    0). `message` is the server's own sentence when it gave one."""

    def __init__(
        self, code: str, message: str, *, status: int = 0, close_code: int | None = None, index: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.close_code = close_code
        self.index = index


def backoff_window(attempt: int) -> tuple[float, float]:
    """The window `backoff_delay(attempt)` draws from, in seconds."""
    return 0.0, min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(attempt, 16))


def backoff_delay(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """The wait before try `attempt` (0 for the first retry): full jitter, a uniform draw from 0
    to min(20 s, 0.5 s x 2^attempt), so clients a restarted server lost do not all come back at
    once."""
    return draw() * backoff_window(attempt)[1]


def token_expiry(token: str) -> float | None:
    """A JWT's `exp` in seconds since the epoch, read without checking its signature (the server
    checks it); None when the token has none or is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    return float(expiry) if isinstance(expiry, (int, float)) else None


def new_event_id() -> str:
    """A random UUID, made on the client so that a retried append is a `duplicate`, never a
    second event."""
    return str(uuid.uuid4())


class CursorStore(Protocol):
    """Where a stream keeps the cursor of the last event the application processed."""

    def load(self) -> str | None: ...

    def save(self, cursor: str) -> None: ...


class MemoryCursorStore:
    """Keeps the cursor in memory only: a new process starts from the stream's start (or from
    `initial`)."""

    def __init__(self, initial: str | None = None) -> None:
        self.cursor = initial

    def load(self) -> str | None:
        return self.cursor

    def save(self, cursor: str) -> None:
        self.cursor = cursor


class FileCursorStore:
    """Keeps the cursor in a file, replaced atomically (a new file renamed over the old), so a
    crash leaves the old cursor or the new one, never half of one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, cursor: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(cursor + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
