#!/usr/bin/env python3
"""`triaged schema` against the repository's configs, with Debian's python3-jsonschema.

- the printed schema is schemas/config.v1.json and a valid draft 2020-12 schema;
- every config in the repository that `triaged validate` accepts (config/examples/,
  deploy/examples/, the ConfigMap in deploy/k8s/, tests/data/configs/, fuzz/corpus/config/)
  validates against it — the schema is never stricter than the loader;
- what the loader refuses for a misspelt or misplaced key, or a value of the wrong kind, the
  schema refuses too: tests/data/configs/unknown_key.yaml and mutations of the example config.

Usage: config_schema_test.py TRIAGED SOURCE_DIR
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def validate_cli(triaged, text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP",)}
        return subprocess.run([triaged, "validate", "-c", f.name], capture_output=True,
                              text=True, env=env).returncode == 0
    finally:
        os.unlink(f.name)


def configs(source):
    """(name, YAML text) of every config file in the repository."""
    paths = [source / "config/examples/rules.yaml"]
    paths += sorted(p for p in (source / "deploy/examples").glob("*.yaml")
                    if not p.name.endswith(".tests.yaml"))
    paths += sorted((source / "tests/data/configs").glob("*.yaml"))
    paths += sorted(p for p in (source / "fuzz/corpus/config").iterdir() if p.is_file())
    for p in paths:
        yield str(p.relative_to(source)), p.read_text(errors="replace")
    cm = yaml.safe_load((source / "deploy/k8s/base/configmap.yaml").read_text())
    for name, text in cm["data"].items():
        yield f"deploy/k8s/base/configmap.yaml data.{name}", text


def main(triaged, source):
    source = Path(source)
    printed = subprocess.run([triaged, "schema"], capture_output=True, text=True, check=True).stdout
    schema = json.loads(printed)
    check(schema == json.loads((source / "schemas/config.v1.json").read_text()),
          "`triaged schema` differs from schemas/config.v1.json (rebuild?)")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    def errors(doc):
        return [e.message for e in validator.iter_errors(doc)]

    valid = 0
    for name, text in configs(source):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None  # not YAML that Python reads: the loader must refuse it too
            check(not validate_cli(triaged, text), f"{name}: the loader accepts what PyYAML "
                  "cannot parse")
            continue
        loader_ok = validate_cli(triaged, text)
        if loader_ok:
            valid += 1
            problems = errors(doc if doc is not None else {})
            check(not problems, f"{name}: triaged validate accepts it, the schema does not: "
                  f"{problems}")
        elif name == "tests/data/configs/unknown_key.yaml":
            check(any("priorty" in m for m in errors(doc)),
                  f"{name}: the schema does not flag the misspelt key 'priorty'")
    check(valid >= 6, f"only {valid} valid configs found")

    # Mutations of the example config: each is refused by the loader and by the schema.
    base_text = (source / "config/examples/rules.yaml").read_text()
    base = yaml.safe_load(base_text)
    check(not errors(base), "the example config itself does not validate")

    def mutate(fn):
        doc = copy.deepcopy(base)
        fn(doc)
        return doc

    cases = {
        "misspelt top-level key": lambda d: d.__setitem__("destination", {}),
        "misspelt trace key": lambda d: d["trace"].__setitem__("decison_wait", "10s"),
        "misspelt kafka key": lambda d: d["kafka"].__setitem__("group", "x"),
        "misspelt rule field": lambda d: d["rules"][0].__setitem__("wehn", "true"),
        "misspelt limit key": lambda d: d["rules"][1]["limit"].__setitem__("burst", 3),
        "misspelt destination key": lambda d: d["destinations"]["regressions"].__setitem__(
            "topics", "x"),
        "misspelt annotation key": lambda d: d["annotations"]["thumbs"].__setitem__("value", []),
        "duration without a unit": lambda d: d["trace"].__setitem__("decision_wait", "10"),
        "bad size unit": lambda d: d["trace"].__setitem__("max_trace_bytes", "4MB"),
        "unknown mode": lambda d: d.__setitem__("mode", "first"),
        "unknown guarantee": lambda d: d["kafka"].__setitem__("guarantee", "exactly-once"),
        "unknown span format": lambda d: d["inputs"]["spans"].__setitem__("format", "otlp"),
        "sample above 1": lambda d: d["rules"][2].__setitem__("sample", 1.5),
        "rule without route_to": lambda d: d["rules"][0].pop("route_to"),
        "destination without kind": lambda d: d["destinations"]["regressions"].pop("kind"),
        "categorical without values": lambda d: d["annotations"]["thumbs"].pop("values"),
        "values on a score": lambda d: d["annotations"]["faithfulness"].__setitem__(
            "values", ["a"]),
    }
    for what, fn in cases.items():
        doc = mutate(fn)
        check(not validate_cli(triaged, yaml.safe_dump(doc, sort_keys=False)),
              f"{what}: triaged validate accepts it (the case is wrong)")
        check(errors(doc), f"{what}: the schema accepts it")

    # Values from the environment are accepted where the loader would expand them.
    env_doc = mutate(lambda d: (d["trace"].__setitem__("max_open_traces", "${MAX_OPEN:-1000}"),
                                d["trace"].__setitem__("decision_wait", "${WAIT:-10s}"),
                                d.__setitem__("mode", "${MODE:-fan_out}")))
    check(not errors(env_doc), f"${{VAR}} values refused: {errors(env_doc)}")

    for f in failures:
        print("config_schema_test: " + f, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"config_schema_test: {valid} repository configs valid, {len(cases)} broken ones "
          "refused by both the loader and the schema")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
