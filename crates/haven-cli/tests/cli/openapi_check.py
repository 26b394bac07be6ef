"""Validate Haven's OpenAPI document (OpenAPI 3.1, with
openapi-spec-validator) and real answers of a server against it: each
answer against the schema its route documents for its status.

usage: openapi_check.py DOCUMENT.json SAMPLES.json
SAMPLES: [{"method", "pattern", "status", "answer"}]; prints one line per
problem and exits 1 when there is any."""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def main():
    document = json.load(open(sys.argv[1]))
    samples = json.load(open(sys.argv[2]))
    validate(document)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:haven:openapi", resource)
    problems = []
    for s in samples:
        path = "/api/v1" + s["pattern"]
        method = s["method"].lower()
        responses = document["paths"][path][method]["responses"]
        status = str(s["status"])
        if status not in responses and status >= "400" and "default" in responses:
            status = "default"
        if status not in responses:
            problems.append(f"{s['method']} {s['pattern']}: status {status} is not documented ({sorted(responses)})")
            continue
        where = pointer("paths", path, method, "responses", status, "content", "application/json", "schema")
        validator = Draft202012Validator({"$ref": "urn:haven:openapi#" + where}, registry=registry)
        for error in validator.iter_errors(s["answer"]):
            at = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{s['method']} {s['pattern']} ({status}) at /{at}: {error.message[:300]}")
    for p in problems:
        print(p)
    print(f"{len(samples)} answers checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)


main()
