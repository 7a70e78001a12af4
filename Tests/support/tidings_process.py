"""A real `tidings serve` process, for the black-box tests (protocol and browser)."""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("TIDINGS_BINARY", ROOT / ".build" / "debug" / "tidings"))


class Server:
    """Serves `directory` on a free port (or on `port`, to come back where a client expects it)."""

    def __init__(self, directory, port=0):
        self.directory = directory
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--data", directory, "--port", str(port), "--sync", "normal",
             "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        self.base = line.strip().split()[-1]
        self.port = int(self.base.rsplit(":", 1)[1])
        self.ws = self.base.replace("http://", "ws://") + "/v1/stream"

    def token(self, role, sub, ttl="1h"):
        return subprocess.run(
            [str(BINARY), "token", "--data", self.directory, "--role", role, "--sub", sub, "--ttl", ttl],
            check=True, capture_output=True, text=True).stdout.strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)

    def kill(self):
        """SIGKILL: the crash a client must ride out."""
        self.process.kill()
        self.process.wait(timeout=30)
