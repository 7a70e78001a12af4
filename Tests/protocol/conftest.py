"""A real `tidings serve` process on a free port, for black-box protocol tests."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "Schemas"
BINARY = pathlib.Path(os.environ.get("TIDINGS_BINARY", ROOT / ".build" / "debug" / "tidings"))


def _registry():
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validate(instance, schema_name):
    """Raises if `instance` breaks `Schemas/<schema_name>`."""
    schema = json.loads((SCHEMAS / schema_name).read_text())
    Draft202012Validator(schema, registry=REGISTRY).validate(instance)


class Server:
    def __init__(self, directory):
        self.directory = directory
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--data", directory, "--port", "0", "--sync", "normal", "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        self.base = line.strip().split()[-1]
        self.ws = self.base.replace("http://", "ws://") + "/v1/stream"

    def token(self, role, sub):
        return subprocess.run([str(BINARY), "token", "--data", self.directory, "--role", role, "--sub", sub, "--ttl", "1h"],
                              check=True, capture_output=True, text=True).stdout.strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def server():
    directory = tempfile.mkdtemp(prefix="tidings-protocol-")
    instance = Server(directory)
    yield instance
    instance.stop()
    shutil.rmtree(directory, ignore_errors=True)
