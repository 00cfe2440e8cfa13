"""Validates Kubernetes objects against schemas, rejecting unknown fields. Run by test/k8s/schemas.ts
with the .tools/venv interpreter (scripts/install-validators.sh).

    validate_objects.py KUBERNETES_VERSION CRD_DIR < objects.json > results.json

stdin: a JSON list of {"where": str, "object": {...}}. stdout: a JSON list, in the same order, of
{"where", "kind", "apiVersion", "validatedBy", "errors": [str]}.

* Built-in kinds: kubernetes-validate's own validate(), with its strict schemas (unknown fields are
  errors) of the given Kubernetes version.
* Kinds a CRD under CRD_DIR defines: jsonschema against the openAPIV3Schema of the CRD version the
  object names, made strict the way the API server treats a structural schema: an object schema
  without x-kubernetes-preserve-unknown-fields keeps only the properties it lists (the server drops
  the others, and `kubectl --validate=strict` rejects them), so here they are errors; metadata is
  checked against the strict ObjectMeta schema kubernetes-validate ships.
* Any other kind is an error: nothing passes unvalidated.
"""

import copy
import json
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from importlib import resources
from referencing import Registry
from referencing.jsonschema import DRAFT202012

OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def closed(schema, in_junctor=False):
    """A copy of an OpenAPI v3 structural schema in which objects accept only the fields it lists.

    Schemas under allOf/anyOf/oneOf/not only add value checks to the structure beside them (a
    structural schema declares every field outside them), so they are left open.
    """
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: closed(sub, in_junctor) for name, sub in value.items()}
        elif key in JUNCTORS:
            out[key] = [closed(s, True) for s in value] if isinstance(value, list) else closed(value, True)
        elif key in ("items", "additionalProperties"):
            out[key] = closed(value, in_junctor)
        else:
            out[key] = value
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    is_object = out.get("type") in ("object", ["object", "null"]) or "properties" in out
    if is_object and not in_junctor and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


class CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML 1.1's `=` (the "value" type) is plain text in these files, as in every YAML 1.2 reader."""


CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_crds(crd_dir, kinds):
    """(group/version, kind) -> the closed schema of that CRD version, for the CRDs of these kinds."""
    schemas = {}
    for path in sorted(Path(crd_dir).rglob("*.yaml")):
        text = path.read_text()
        # Parsing is slow and some CRDs are large: skip files that cannot define a wanted kind.
        if not any(f"kind: {kind}\n" in text for kind in kinds):
            continue
        for doc in yaml.load_all(text, Loader=CrdLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema.setdefault("properties", {})["metadata"] = {"$ref": OBJECT_META}
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = (schema, path.name)
    return schemas


def definitions_registry(kubernetes_version):
    folder = f"v{kubernetes_version}.0-local-strict"
    text = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", folder, "_definitions.json").read_text()
    return DRAFT202012.create_resource(json.loads(text)) @ Registry()


def main():
    kubernetes_version, crd_dir = sys.argv[1], sys.argv[2]
    items = json.load(sys.stdin)
    crds = load_crds(crd_dir, {str(item["object"].get("kind")) for item in items})
    registry = definitions_registry(kubernetes_version)
    results = []
    for item in items:
        obj, where = item["object"], item["where"]
        key = (obj.get("apiVersion"), obj.get("kind"))
        result = {"where": where, "kind": key[1], "apiVersion": key[0], "errors": []}
        if key in crds:
            schema, source = crds[key]
            result["validatedBy"] = f"CRD {source}"
            validator = jsonschema.Draft202012Validator(schema, registry=registry)
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
                path = ".".join(str(p) for p in error.absolute_path)
                result["errors"].append(f"{path or '(root)'}: {error.message}")
        else:
            result["validatedBy"] = f"kubernetes-validate {kubernetes_version} strict"
            try:
                kubernetes_validate.validate(obj, kubernetes_version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                result["validatedBy"] = "nothing"
                result["errors"].append(f"no schema for {key[1]} {key[0]}: neither Kubernetes {kubernetes_version} nor a CRD under {crd_dir} defines it")
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.absolute_path)
                result["errors"].append(f"{path or '(root)'}: {e.message}")
        results.append(result)
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
