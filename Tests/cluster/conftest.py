"""The cluster tests: Tidings nodes and PostgreSQL servers on hosts made of network namespaces
(root only, as in CI). The helpers live beside the tests in this folder."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
