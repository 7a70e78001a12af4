"""A bounded run of tools/crash-loop: SIGKILLs under HTTP appends and live streams."""
import json
import subprocess
import sys

from tidings_process import BINARY, ROOT


def test_kills_under_load_lose_nothing(tmp_path):
    figures_file = tmp_path / "crash.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "crash-loop"), "--rounds", "25", "--seed", "20261127",
         "--binary", str(BINARY), "--json", str(figures_file)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(figures_file.read_text())
    assert figures["failures"] == []
    assert figures["acknowledged"] > 0 and figures["log_events"] == figures["acknowledged"]
    assert figures["retried_after_kill"] > 0, "some appends were cut off by a kill and retried"
