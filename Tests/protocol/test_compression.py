"""permessage-deflate (RFC 7692) on the stream: offered by the client, answered without context
takeover in either direction; the same messages with and without it; and a raw client that
checks the frames themselves (RSV1 on compressed messages, none on small ones)."""
import asyncio
import base64
import json
import os
import socket
import zlib

import requests
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def append(server, user, count, title, first=0):
    token = server.token("publisher", "backend")
    events = [
        {"type": "notification.created", "user_id": user, "data": {"notification_id": f"n-{i}", "title": title}}
        for i in range(first, first + count)
    ]
    reply = requests.post(f"{server.base}/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 201, reply.text


async def replay(server, user, compression):
    """Every message of a stream from its start through caught_up, and the extensions header."""
    hello = {"type": "hello", "token": server.token("user", user), "cursor": None}
    async with websockets.connect(server.ws, compression=compression, max_size=2**22) as socket_:
        header = socket_.response.headers.get("Sec-WebSocket-Extensions")
        await socket_.send(json.dumps(hello))
        messages = []
        while not messages or messages[-1]["type"] != "caught_up":
            messages.append(json.loads(await asyncio.wait_for(socket_.recv(), 10)))
        # A client message, compressed by the client, still answered.
        await socket_.send(json.dumps({"type": "read", "ref": "r1", "notification_ids": ["n-0"]}))
        while messages[-1]["type"] != "ack":
            messages.append(json.loads(await asyncio.wait_for(socket_.recv(), 10)))
        return header, messages


def test_deflate_changes_nothing_a_client_reads(server):
    append(server, "alice", 300, "Compressible " * 20)
    with_deflate = asyncio.run(replay(server, "alice", "deflate"))
    assert with_deflate[0] == ANSWER
    # A second reader of the same stream, without the extension, after the first one's read.
    without = asyncio.run(replay(server, "alice", None))
    assert without[0] is None
    events = lambda messages: [m["event"]["id"] for m in messages if m["type"] == "event"]
    assert events(with_deflate[1])[:300] == events(without[1])[:300]
    assert with_deflate[1][-1] == {"type": "ack", "ref": "r1", "status": "ok", "unread_count": 299, "unseen_count": 299, "archived_count": 0}
    assert without[1][-1]["status"] == "noop"


def test_offers_the_server_cannot_honour_are_declined(server):
    async def header(factory):
        async with websockets.connect(server.ws, extensions=[factory], compression=None) as socket_:
            return socket_.response.headers.get("Sec-WebSocket-Extensions")

    # A smaller server window than deflate's full one: declined, the stream goes on uncompressed.
    assert asyncio.run(header(ClientPerMessageDeflateFactory(server_max_window_bits=10))) is None
    assert asyncio.run(header(ClientPerMessageDeflateFactory(client_max_window_bits=9))) == ANSWER


def raw_frames(server, hello, offer):
    """The frames of a stream read on a bare socket, as (rsv1, opcode, payload)."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"
    )
    connection.sendall(request.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, data = data.split(b"\r\n\r\n", 1)
    assert b"101" in head.split(b"\r\n")[0]
    assert f"Sec-WebSocket-Extensions: {ANSWER}".lower().encode() in head.lower()
    payload = json.dumps(hello).encode()
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask
    connection.sendall(frame + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    frames = []
    while True:
        while len(data) < 2:
            data += connection.recv(65536)
        length = data[1] & 0x7F
        start = 2
        if length == 126:
            while len(data) < 4:
                data += connection.recv(65536)
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            while len(data) < 10:
                data += connection.recv(65536)
            length, start = int.from_bytes(data[2:10], "big"), 10
        while len(data) < start + length:
            data += connection.recv(65536)
        rsv1, opcode, body = bool(data[0] & 0x40), data[0] & 0x0F, data[start : start + length]
        data = data[start + length :]
        if rsv1:
            # Each message on its own (no context takeover): a fresh inflater every time.
            body = zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff")
        frames.append((rsv1, opcode, body))
        if opcode == 1 and json.loads(body)["type"] == "caught_up":
            connection.close()
            return frames


def test_large_messages_are_compressed_and_small_ones_not(server):
    append(server, "bob", 20, "Hi")
    append(server, "bob", 20, "A title long enough to be worth compressing, " * 4, first=20)
    frames = raw_frames(server, {"type": "hello", "token": server.token("user", "bob"), "cursor": None}, "permessage-deflate")
    assert len([f for f in frames if json.loads(f[2])["type"] == "event"]) == 40
    # Deflate's own framing would make a message of under 96 bytes longer: those go as they are.
    assert [rsv1 for rsv1, _, _ in frames] == [len(body) >= 96 for _, _, body in frames]
