"""docs/PROTOCOL.md and Schemas/ say the same: every route of Schemas/openapi.yaml (method and
path) and every message of Schemas/ is named on the page, and every route, message and schema
file the page names exists. Clients are written against the page, so a route or message added
to the server without it, or a page promising one the server lacks, fails here."""
import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "PROTOCOL.md").read_text()
SCHEMAS = ROOT / "Schemas"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_routes():
    document = yaml.safe_load((SCHEMAS / "openapi.yaml").read_text())
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


ROUTE = r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`\s?]*)[^`]*`"


def page_routes():
    """The routes of the page's route table: rows that start with a `METHOD /path` span."""
    rows = [line for line in PAGE.splitlines() if re.match(r"\| " + ROUTE, line)]
    return {tuple(re.match(r"\| " + ROUTE, row).group(1).split(" ", 1)) for row in rows}


def page_route_mentions():
    """Every `METHOD /path` anywhere on the page, the query left out."""
    return {tuple(span.split(" ", 1)) for span in re.findall(ROUTE, PAGE)}


def schema_message_types():
    """The `type` of every message schema (ws-*.json with a const type), server or client."""
    types = {}
    for path in sorted(SCHEMAS.glob("ws-*.json")):
        schema = json.loads(path.read_text())
        variants = schema.get("oneOf", [schema]) if "properties" not in schema else [schema]
        for variant in variants:
            const = variant.get("properties", {}).get("type", {}).get("const")
            if const:
                types[const] = path.name
    return types


def page_message_types():
    return set(re.findall(r'\{"type": ?"([a-z_]+)"', PAGE))


def test_every_route_of_the_openapi_document_is_on_the_page_and_back():
    documented, table = openapi_routes(), page_routes()
    assert documented - table == set(), "routes of openapi.yaml missing from the page's route table"
    assert table - documented == set(), "routes in the page's table that openapi.yaml lacks"
    assert page_route_mentions() - documented == set(), "routes the page mentions that openapi.yaml lacks"


def test_every_message_has_a_schema_and_is_on_the_page():
    schemas, named = schema_message_types(), page_message_types()
    assert set(schemas) - named == set(), "messages with a schema the page does not show"
    assert named - set(schemas) == set(), "messages on the page without a schema"
    assert {"hello", "read", "welcome", "event", "caught_up", "reset", "ack", "error"} <= named


def test_every_schema_file_is_named_on_the_page_and_every_named_one_exists():
    files = {path.name for path in SCHEMAS.iterdir() if path.suffix in (".json", ".yaml")}
    named = set(re.findall(r"([a-z0-9-]+\.(?:json|yaml))", PAGE))
    assert files - named == set(), "schema files the page does not name"
    assert named - files == set(), "files the page names that Schemas/ lacks"


def test_the_stream_error_codes_on_the_page_are_the_schemas():
    schema = json.loads((SCHEMAS / "ws-error.json").read_text())
    row = next(line for line in PAGE.splitlines() if line.startswith('| `{"type":"error"'))
    codes = row.split('"code":', 1)[1].split(',"message"', 1)[0]
    assert set(re.findall(r'"([a-z_]+)"', codes)) == set(schema["properties"]["code"]["enum"])


def test_the_page_carries_a_version_and_a_changelog():
    version = re.match(r"# Tidings wire protocol \(v(\d+\.\d+|\d+)\)\n", PAGE)
    assert version is not None
    # The title's version is the newest entry of the changelog.
    changelog = PAGE.split("\n## Changelog\n", 1)[1]
    assert changelog.startswith(f"- **v{version.group(1)}, ")
    assert "\n## Changelog\n" in PAGE
