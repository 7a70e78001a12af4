"""A real `tidings serve` process, for the black-box tests (protocol and browser).

`TIDINGS_TEST_ENGINE=postgres` (with `TIDINGS_TEST_POSTGRES_URL` naming a cluster's admin
database, as `tools/test` sets it) runs every server on PostgreSQL instead of SQLite: each store
directory then stands for a new database of that cluster (its URL kept in the directory, so a
restarted server finds the same store) and holds the JWT secret the nodes are given.
"""
import asyncio
import json
import os
import pathlib
import secrets
import subprocess
import urllib.parse
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("TIDINGS_BINARY", ROOT / ".build" / "debug" / "tidings"))
ENGINE = os.environ.get("TIDINGS_TEST_ENGINE", "sqlite")


def store_arguments(directory):
    """The command-line options that name the store kept for `directory`, and its secret."""
    if ENGINE == "sqlite":
        return ["--data", directory]
    if ENGINE != "postgres":
        raise RuntimeError(f"TIDINGS_TEST_ENGINE={ENGINE} is neither sqlite nor postgres")
    folder = pathlib.Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    url_file, secret_file = folder / "postgres-url", folder / "jwt-secret"
    if not url_file.exists():
        admin = os.environ["TIDINGS_TEST_POSTGRES_URL"]
        name = "tidings_black_box_" + uuid.uuid4().hex[:12]
        subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        url_file.write_text(urllib.parse.urlparse(admin)._replace(path="/" + name).geturl())
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(32) + "\n")
        secret_file.chmod(0o600)
    return ["--postgres", url_file.read_text(), "--jwt-secret-file", str(secret_file)]


class Server:
    """Serves `directory` on a free port (or on `port`, to come back where a client expects it)."""

    def __init__(self, directory, port=0, arguments=()):
        self.directory = directory
        self.store = store_arguments(directory)
        self.process = subprocess.Popen(
            [str(BINARY), "serve", *self.store, "--port", str(port), "--sync", "normal", "--log-level", os.environ.get("TIDINGS_TEST_LOG_LEVEL", "error"),
             *arguments],
            stdout=subprocess.PIPE, stderr=open(os.environ["TIDINGS_TEST_STDERR"], "a") if os.environ.get("TIDINGS_TEST_STDERR") else subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        self.base = line.strip().split()[-1]
        self.port = int(self.base.rsplit(":", 1)[1])
        self.ws = self.base.replace("http://", "ws://") + "/v1/stream"

    def token(self, role, sub, ttl="1h"):
        return subprocess.run(
            [str(BINARY), "token", *self.store, "--role", role, "--sub", sub, "--ttl", ttl],
            check=True, capture_output=True, text=True).stdout.strip()

    def replay(self, token, cursor=None, **hello):
        """The messages of a stream opened with `cursor`, from `welcome` through `caught_up`."""
        async def run():
            import websockets
            async with websockets.connect(self.ws) as socket_:
                await socket_.send(json.dumps({"type": "hello", "token": token, "cursor": cursor, **hello}))
                messages = []
                while not messages or messages[-1]["type"] != "caught_up":
                    messages.append(json.loads(await asyncio.wait_for(socket_.recv(), 10)))
                return messages
        return asyncio.run(run())

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)

    def kill(self):
        """SIGKILL: the crash a client must ride out."""
        self.process.kill()
        self.process.wait(timeout=30)
