"""Checks JSON against the schemas in Schemas/ (draft 2020-12, cross-file references resolved)."""
import json

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tidings_process import ROOT

SCHEMAS = ROOT / "Schemas"


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
