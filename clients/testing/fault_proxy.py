#!/usr/bin/env python3
"""An HTTP proxy in front of `tidings serve` that fails the first requests on purpose, for the
client libraries' publishing scenarios (docs/CLIENTS.md, 9 and 10).

    fault_proxy.py --target 127.0.0.1:8080 --drop-answers 1 --answer-503 2

It prints `listening on http://127.0.0.1:PORT` once it accepts connections. Each request is
read whole and then, in this order while the counts last:
  --answer-503 N    the proxy answers `503 unavailable` itself; the server never sees it
  --drop-answers N  the request goes to the server, which answers; the proxy waits for that
                    answer and then closes the client's connection without a byte of it (the
                    connection lost after the request was sent)
and after that every request is forwarded and its answer relayed. Each connection carries one
request (the proxy answers with `Connection: close`). A line per request goes to stdout:
`503`, `dropped <status>` or `relayed <status>`, written before the client gets its answer.
"""
import argparse
import asyncio
import json
import sys


async def read_request(reader):
    """The request's head and body, or None when the client closed first."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


async def forward(target, head, body):
    """Sends the request to the server on a connection of its own; returns its whole answer."""
    host, port = target
    reader, writer = await asyncio.open_connection(host, port)
    lines = head.split(b"\r\n")
    kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:") and line]
    writer.write(b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""]) + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


class Proxy:
    def __init__(self, target, drop_answers, answer_503):
        self.target = target
        self.drop_answers = drop_answers
        self.answer_503 = answer_503

    async def handle(self, reader, writer):
        try:
            head, body = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if self.answer_503 > 0:
            self.answer_503 -= 1
            payload = json.dumps({"error": {"code": "unavailable", "message": "the proxy says try again"}}).encode()
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
            print("503", flush=True)
            await writer.drain()
            writer.close()
            return
        answer = await forward(self.target, head, body)
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
        if self.drop_answers > 0:
            self.drop_answers -= 1
            # Reset rather than a clean close: the client sees its connection lost.
            print(f"dropped {status}", flush=True)
            writer.transport.abort()
            return
        print(f"relayed {status}", flush=True)
        writer.write(answer)
        await writer.drain()
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="HOST:PORT of tidings serve")
    parser.add_argument("--drop-answers", type=int, default=0)
    parser.add_argument("--answer-503", type=int, default=0)
    arguments = parser.parse_args()
    host, _, port = arguments.target.rpartition(":")
    proxy = Proxy((host, int(port)), arguments.drop_answers, arguments.answer_503)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
