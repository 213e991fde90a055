#!/usr/bin/env python3
"""Every `when: ...`, `sample_key: ...` and `filter: ...` example in docs/rules.md compiles.

The `when` and `sample_key` examples are put into one config, each as a rule of its own, and
`triaged validate` must accept it; a failing example is named by the loader's FILE:LINE:COL
message. Each `filter:` line of a YAML block is validated in a config of its own.

Usage: rule_examples_test.py TRIAGED SOURCE_DIR
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def main(triaged, source):
    md = (Path(source) / "docs/rules.md").read_text()
    examples = []
    for span in re.findall(r"`([^`\n]+)`", md):
        m = re.match(r"(when|sample_key): (.+)$", span)
        if m and (m.group(1), m.group(2)) not in examples:
            examples.append((m.group(1), m.group(2)))
    if len(examples) < 40:
        sys.exit(f"rule_examples_test: only {len(examples)} examples found in docs/rules.md")
    lines = ["destinations:", "  d: {kind: queue, topic: t}", "rules:"]
    for i, (key, expr) in enumerate(examples):
        # An example written with YAML quotes ('...') is used as written, others are quoted.
        value = expr if expr.startswith("'") else json.dumps(expr)
        lines.append(f"  - name: example-{i + 1}")
        lines.append(f"    when: {value}" if key == "when" else "    when: true")
        if key == "sample_key":
            lines.append(f"    sample_key: {value}")
        lines.append("    route_to: [d]")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    run = subprocess.run([triaged, "validate", "-c", f.name], capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        sys.exit(f"rule_examples_test: an example in docs/rules.md does not compile (config: "
                 f"{f.name})")
    Path(f.name).unlink()
    filters = re.findall(r"^filter: (.+)$", md, re.MULTILINE)
    if not filters:
        sys.exit("rule_examples_test: no filter: example found in docs/rules.md")
    for expr in filters:
        config = ("destinations:\n  d: {kind: queue, topic: t}\n"
                  f"filter: {expr}\nrules:\n  - {{name: r, when: true, route_to: [d]}}\n")
        run = subprocess.run([triaged, "validate", "-c", "-"], input=config,
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            sys.exit(f"rule_examples_test: the filter example does not compile: {expr}")
    print(f"rule_examples_test: {len(examples)} examples and {len(filters)} filters compile")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
