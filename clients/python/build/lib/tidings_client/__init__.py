"""The Tidings client for Python: streams that resume exactly where the application left off,
the inbox calls, and publishing that never appends twice. docs/CLIENTS.md says what it promises
and docs/PROTOCOL.md what it speaks.

    async with AsyncTidingsClient("https://tidings.example.com", get_token=fetch_token) as client:
        async for item in client.stream(FileCursorStore("alice.cursor")):
            if isinstance(item, Reset):
                reload_inbox()
            else:
                show(item.envelope, item.counts)
"""
from ._http import AsyncTidingsClient, TidingsClient
from ._stream import Ack, Counts, Event, Reset, TidingsStream
from ._support import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    CursorStore,
    FileCursorStore,
    MemoryCursorStore,
    TidingsError,
    backoff_delay,
    backoff_window,
    new_event_id,
    token_expiry,
)

__all__ = [
    "Ack",
    "AsyncTidingsClient",
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "Counts",
    "CursorStore",
    "Event",
    "FileCursorStore",
    "MemoryCursorStore",
    "Reset",
    "TidingsClient",
    "TidingsError",
    "TidingsStream",
    "backoff_delay",
    "backoff_window",
    "new_event_id",
    "token_expiry",
]
