#!/usr/bin/env python3
"""`triaged test --output junit` writes a JUnit XML report that a real XML parser reads.

Two test files, one with a failing test whose name and failure text need escaping; the report
is parsed with xml.etree (expat) and checked: one <testsuite> per file, one <testcase> per test,
the counts, and a <failure> naming the unmet expectation. The exit code stays 1 on a failure.

Usage: junit_report_test.py TRIAGED SOURCE_DIR
"""
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

FAILING = """tests:
  - name: a thumbs-up <is> "not" routed & fails
    events:
      - {trace_id: abc, thumbs: up}
    expect:
      routes: [{rule: thumbs-down}]
  - name: a thumbs-down is routed
    events:
      - {trace_id: abd, thumbs: down}
    expect:
      routes: [{rule: thumbs-down}]
"""


def check(cond, what):
    if not cond:
        sys.exit(f"junit_report_test: {what}")


def main(triaged, source):
    source = Path(source)
    config = source / "config/examples/rules.yaml"
    passing = source / "config/examples/rules.tests.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        failing = Path(tmp) / "failing.tests.yaml"
        failing.write_text(FAILING)
        run = subprocess.run([triaged, "test", "--output", "junit", "-c", str(config),
                              str(passing), str(failing)], capture_output=True, text=True)
    check(run.returncode == 1, f"exit {run.returncode}, expected 1: {run.stderr}")
    root = ET.fromstring(run.stdout)
    check(root.tag == "testsuites", f"root is <{root.tag}>")
    suites = root.findall("testsuite")
    check([s.get("name") for s in suites] == [str(passing), str(failing)],
          f"suites {[s.get('name') for s in suites]}")
    cases = [c for s in suites for c in s.findall("testcase")]
    check(int(root.get("tests")) == len(cases) and len(cases) > 2, f"tests={root.get('tests')}")
    check(root.get("failures") == "1", f"failures={root.get('failures')}")
    check(suites[0].get("failures") == "0" and suites[1].get("failures") == "1",
          "per-suite failures")
    check(int(suites[0].get("tests")) == len(suites[0].findall("testcase")), "suite 0 tests")
    failed = [c for c in cases if c.find("failure") is not None]
    check(len(failed) == 1, f"{len(failed)} failed testcases")
    case = failed[0]
    check(case.get("name") == 'a thumbs-up <is> "not" routed & fails', f"name {case.get('name')}")
    check(case.get("classname") == str(failing), f"classname {case.get('classname')}")
    failure = case.find("failure")
    check("thumbs-down" in failure.get("message"), f"message {failure.get('message')}")
    check("routed: nothing" in failure.text, f"failure text {failure.text!r}")
    for c in cases:
        float(c.get("time"))
    print(f"junit_report_test: {len(cases)} testcases in {len(suites)} suites, 1 failure")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
