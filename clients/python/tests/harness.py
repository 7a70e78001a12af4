"""A real `tidings serve` for the Python client's tests, tokens signed with its secret, the fault
proxy of docs/CLIENTS.md, and polling with a deadline."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import tempfile
import time
from typing import Any, Awaitable, Callable

ROOT = pathlib.Path(__file__).resolve().parents[3]
BINARY = pathlib.Path(os.environ.get("TIDINGS_BINARY", ROOT / ".build" / "debug" / "tidings"))


class Server:
    """One `tidings serve` on a store directory of its own, with a known JWT secret."""

    def __init__(self, directory: str | None = None, port: int = 0, secret: str | None = None) -> None:
        self.owns_directory = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="tidings-python-")
        self.secret = secret or secrets.token_hex(32)
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--data", self.directory, "--port", str(port), "--sync", "normal",
             "--log-level", "error"],
            env={**os.environ, "TIDINGS_JWT_SECRET": self.secret}, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"tidings serve did not start: {line!r}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def token(self, role: str, sub: str, ttl: int = 3600) -> str:
        """A token of `role` for `sub`, expiring `ttl` seconds from now (negative: in the past)."""
        def encode(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
        head = encode({"alg": "HS256", "typ": "JWT"})
        body = encode({"sub": sub, "role": role, "exp": int(time.time()) + ttl})
        signature = hmac.new(self.secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    def kill(self) -> None:
        """SIGKILL: the crash a client must ride out."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, keep: bool = False) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if self.owns_directory and not keep:
            shutil.rmtree(self.directory, ignore_errors=True)


class FaultProxy:
    """clients/testing/fault_proxy.py in front of `target`; `log()` gives its line per request."""

    def __init__(self, target: Server, drop_answers: int = 0, answer_503: int = 0) -> None:
        self.process = subprocess.Popen(
            ["python3", str(ROOT / "clients" / "testing" / "fault_proxy.py"), "--target", f"127.0.0.1:{target.port}",
             "--drop-answers", str(drop_answers), "--answer-503", str(answer_503)],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split()[-1]
        self.lines: list[str] = []

    def log(self, count: int) -> list[str]:
        """The first `count` lines (each written before the client got its answer)."""
        assert self.process.stdout is not None
        while len(self.lines) < count:
            self.lines.append(self.process.stdout.readline().strip())
        return self.lines

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Polls `condition` (plain or async) until it is truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def created(user_id: str, notification_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "notification.created", "user_id": user_id,
            "data": {"notification_id": notification_id, "title": "T", **extra}}
