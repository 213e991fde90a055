#!/usr/bin/env python3
"""Fails when something the code accepts or exports is not documented in docs/.

The lists come from the sources themselves, not from a copy kept here:
  - config keys: the key lists of every ForEachKey(...) call in config/yaml_loader.cc (the same
    lists its "did you mean" suggestions use), and the options of every Enum(...) call;
  - the config JSON Schema (schemas/config.v1.json) must hold exactly those keys and options;
  - expression fields: TraceFields() and SpanFields() and kFeedbackFields in rules/expr.cc, the
    paths KnownPaths() adds, the functions Call() knows and the lexer's keywords;
  - rule test file keys: the CheckKeys(...) lists of tools/rule_tests.cc;
  - metric families: every triaged_... / process_... family declared under daemon/;
  - links: every relative link of README.md and docs/*.md resolves inside the repository (and
    its #anchor to a heading);
  - reloads: the keys daemon/reload.cc refuses to change are the ones docs/config.md marks
    "no" in its reload column, and only those.

Usage: docs_coverage.py SOURCE_DIR          check the tree
       docs_coverage.py --self-test SOURCE_DIR   prove that each kind of omission is caught
"""
import json
import re
import sys
from pathlib import Path


def strings(text):
    return re.findall(r'"([^"\\]*)"', text)


def brace_lists(source, call):
    """The string lists in braces that are arguments of `call(` (first braced list after it)."""
    out = []
    for m in re.finditer(re.escape(call) + r"\(", source):
        depth, i = 1, m.end()
        # The call's argument text, up to its closing parenthesis or a lambda body.
        start = i
        while i < len(source) and depth > 0:
            c = source[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "[" and depth == 1:  # a lambda: its captures start the handler
                break
            i += 1
        args = source[start:i]
        b = re.search(r"\{([^{}]*)\}", args)
        if b and '"' in b.group(1):
            out.append(strings(b.group(1)))
    return out


def function_body(source, signature):
    i = source.index(signature)
    i = source.index("{", i)
    depth = 0
    for j in range(i, len(source)):
        if source[j] == "{":
            depth += 1
        elif source[j] == "}":
            depth -= 1
            if depth == 0:
                return source[i : j + 1]
    raise ValueError("unterminated " + signature)


class Sources:
    def __init__(self, root):
        self.root = root
        self.loader = (root / "config/yaml_loader.cc").read_text()
        self.expr = (root / "rules/expr.cc").read_text()
        self.rule_tests = (root / "tools/rule_tests.cc").read_text()
        self.daemon = "\n".join(p.read_text() for p in sorted((root / "daemon").glob("*.cc")))
        self.reload = (root / "daemon/reload.cc").read_text()
        self.schema = json.loads((root / "schemas/config.v1.json").read_text())

    def config_key_lists(self):
        lists = brace_lists(self.loader, "ForEachKey")
        if len(lists) < 8:
            raise SystemExit(f"docs_coverage: found only {len(lists)} key lists in "
                             "config/yaml_loader.cc; has ForEachKey changed?")
        return lists

    def config_keys(self):
        keys = {k for lst in self.config_key_lists() for k in lst}
        if '"strict"' in self.loader:  # annotations.strict, read beside the annotation names
            keys.add("strict")
        return keys

    def rule_keys(self):
        for lst in self.config_key_lists():
            if "route_to" in lst:
                return set(lst)
        raise SystemExit("docs_coverage: no rule key list (with route_to) in yaml_loader.cc")

    def enum_options(self):
        return {o for lst in brace_lists(self.loader, "Enum") for o in lst}

    def expression_items(self):
        items = set()
        for fn, root in (("TraceFields()", "trace."), ("SpanFields()", "span.")):
            body = function_body(self.expr, "const std::vector<FieldDef>& " + fn)
            names = re.findall(r'\{"([a-z_]+)",\s*Type::', body)
            if not names:
                raise SystemExit(f"docs_coverage: no fields found in rules/expr.cc {fn}")
            items |= {root + n for n in names}
        fb = re.search(r"kFeedbackFields\[\]\s*=\s*\{([^}]*)\}", self.expr)
        items |= {"feedback.NAME." + f for f in strings(fb.group(1))}
        known = function_body(self.expr, "std::vector<std::string> KnownPaths()")
        items |= set(re.findall(r'push_back\("([a-z_.]+)"\)', known))
        call = function_body(self.expr, "NodePtr Call()")
        items |= {f + "(" for f in re.findall(r'name\.text == "([a-z_]+)"', call)}
        kw = re.search(r"kKeywords\[\]\s*=\s*\{(.*?)\};", self.expr, re.S)
        items |= {"kw:" + k for k in strings(kw.group(1))}
        return items

    def rule_test_keys(self):
        return {k for lst in brace_lists(self.rule_tests, "CheckKeys") for k in lst}

    def restart_keys(self):
        """The keys whose change a reload refuses (daemon/reload.cc CheckReloadable)."""
        keys = set(re.findall(r'\{"([a-z_.]+)",\s*running\.', self.reload))
        if len(keys) < 5:
            raise SystemExit("docs_coverage: no restart-required keys found in daemon/reload.cc")
        return keys

    def metrics(self):
        # Families are declared with Metrics::Declare<T>("name", ...) (HELP/TYPE from the first
        # scrape) or, for the process collector, Family("name", ...).
        names = set(re.findall(r'(?:\.Name\(|Declare<[a-zA-Z:]+>\(|Family\()\s*"((?:triaged|process)_[a-z_]+)"',
                               self.daemon))
        if len(names) < 10:
            raise SystemExit("docs_coverage: found too few metric families under daemon/")
        return names


def schema_paths(schema):
    """(dotted path, leaf key) of every property in the config schema; NAME for map entries and
    rules[] for rule fields."""
    defs = schema.get("$defs", {})

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node and "properties" not in node:
            node = defs[node["$ref"].split("/")[-1]]
        return node

    out = []

    def walk(node, prefix):
        node = resolve(node)
        if not isinstance(node, dict):
            return
        for key, sub in node.get("properties", {}).items():
            path = prefix + key
            out.append((path, key))
            walk(sub, path + ".")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and (resolve(extra).get("properties")):
            walk(extra, prefix + "NAME.")
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, prefix[:-1] + "[].")

    walk(schema, "")
    return out


def schema_enums(schema):
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for v in node.get("enum", []):
                if isinstance(v, str):
                    found.add(v)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return found


def code_spans(text):
    return re.findall(r"`([^`\n]+)`", text)


def check(src, docs):
    """`docs`: {name: text} of docs/*.md. Returns the list of problems."""
    problems = []
    config_md = docs.get("config.md", "")
    rules_md = docs.get("rules.md", "")
    all_md = "\n".join(docs.values())
    config_spans = set(code_spans(config_md))
    rules_spans = code_spans(rules_md)

    # The schema holds exactly what the loader accepts.
    loader_keys = src.config_keys()
    paths = schema_paths(src.schema)
    schema_keys = {leaf for _, leaf in paths}
    for k in sorted(loader_keys - schema_keys):
        problems.append(f'config key "{k}" is accepted by config/yaml_loader.cc but missing '
                        "from schemas/config.v1.json")
    for k in sorted(schema_keys - loader_keys):
        problems.append(f'config key "{k}" is in schemas/config.v1.json but '
                        "config/yaml_loader.cc does not accept it")
    enums = schema_enums(src.schema)
    for o in sorted(src.enum_options() - enums):
        problems.append(f'config value "{o}" (an option in config/yaml_loader.cc) is not in '
                        "schemas/config.v1.json")

    # Every config key in docs/config.md (full path, NAME for map entries); rule fields in
    # docs/rules.md.
    rule_keys = src.rule_keys()
    for path, leaf in paths:
        if path.startswith("rules[]."):
            continue
        if path not in config_spans:
            problems.append(f'config key "{path}" is not documented in docs/config.md '
                            f"(expected `{path}`)")
    for k in sorted(rule_keys):
        if not any(s == k or s.startswith(k + ":") for s in rules_spans):
            problems.append(f'rule field "{k}" is not documented in docs/rules.md '
                            f"(expected `{k}`)")
    for o in sorted(src.enum_options()):
        if not any(re.search(r"\b" + re.escape(o) + r"\b", s) for s in code_spans(all_md)):
            problems.append(f'config value "{o}" is not documented in docs/ (expected `{o}`)')

    # Every field, function and keyword of the expression language in docs/rules.md.
    for item in sorted(src.expression_items()):
        if item.startswith("kw:"):
            word = item[3:]
            ok = any(re.search(r"(^|[^\w.])" + word + r"($|[^\w])", s) for s in rules_spans)
            what = f'expression keyword "{word}"'
        else:
            # Whole paths only: `trace.input_tokens` does not document `trace.input`.
            pattern = re.compile(re.escape(item) + (r"" if item.endswith("(") else r"(?!\w)"))
            ok = any(pattern.search(s) for s in rules_spans)
            what = f'expression field "{item}"' if not item.endswith("(") else \
                f'expression function "{item[:-1]}"'
        if not ok:
            problems.append(f"{what} is not documented in docs/rules.md")

    for k in sorted(src.rule_test_keys()):
        if not any(s == k or s.startswith(k + ":") for s in rules_spans):
            problems.append(f'rule test key "{k}" (tools/rule_tests.cc) is not documented in '
                            "docs/rules.md")

    # The reload column of docs/config.md agrees with daemon/reload.cc.
    fixed = src.restart_keys()
    all_paths = [p for p, _ in paths]

    def needs_restart(key):
        if any(key == f or key.startswith(f + ".") for f in fixed):
            return True
        children = [p for p in all_paths if p.startswith(key + ".")]
        return bool(children) and all(needs_restart(c) for c in children)

    for f in sorted(fixed - set(all_paths)):
        problems.append(f'daemon/reload.cc names "{f}", which is not a config key')
    header = None
    for line in config_md.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if line.startswith("| key |"):
            header = cells
            continue
        if not line.startswith("| `") or header is None or "reload" not in header:
            continue
        key = cells[0].strip("`")
        said = cells[header.index("reload")]
        want = "no" if needs_restart(key) else "yes"
        if said != want:
            problems.append(f'config key "{key}": docs/config.md says reload "{said}", '
                            f'daemon/reload.cc means "{want}"')

    for m in sorted(src.metrics()):
        if not re.search(r"\b" + m + r"\b", all_md):
            problems.append(f'metric family "{m}" (registered under daemon/) is not '
                            "documented in docs/")
    return problems


def heading_anchors(text):
    """GitHub's anchors for the headings of a Markdown text."""
    out, in_code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def check_links(root):
    problems = []
    root = root.resolve()
    for md in [root / "README.md"] + sorted((root / "docs").rglob("*.md")):
        text = md.read_text()
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", link):
                continue  # http(s):, mailto:
            path, _, anchor = link.partition("#")
            target = (md.parent / path).resolve() if path else md
            where = f"{md.relative_to(root)}: link {link}"
            if root not in target.parents and target != root:
                problems.append(f"{where} points outside the repository")
            elif not target.exists():
                problems.append(f"{where}: {path} does not exist")
            elif anchor and target.suffix == ".md" and anchor not in heading_anchors(
                    target.read_text()):
                problems.append(f"{where}: no heading #{anchor} in {target.relative_to(root)}")
    return problems


def load_docs(root):
    return {p.name: p.read_text() for p in sorted((root / "docs").glob("*.md"))}


def self_test(src, docs):
    """Each kind of omission must be reported, naming the item."""
    assert not check(src, docs), "the tree must pass before the self-test"

    def without(name, token):
        d = dict(docs)
        d[name] = d[name].replace(token, "")
        return d

    cases = [
        (without("config.md", "`trace.decision_wait`"), "trace.decision_wait"),
        (without("config.md", "`destinations.NAME.limit`"), "destinations.NAME.limit"),
        (without("rules.md", "sample_salt"), "sample_salt"),
        (without("rules.md", "trace.duration_ms"), "trace.duration_ms"),
        (without("rules.md", "span.model"), "span.model"),
        # Gone while `trace.input_tokens` stays: a whole path, not a prefix, must be documented.
        ({**docs, "rules.md": re.sub(r"trace\.input(?!_)", "", docs["rules.md"])},
         "trace.input"),
        (without("rules.md", "count_spans("), "count_spans"),
        (without("rules.md", "expected_output"), "feedback.NAME.expected_output"),
        (without("rules.md", "`no_routes"), "no_routes"),
        ({k: v.replace("triaged_consumer_lag", "") for k, v in docs.items()},
         "triaged_consumer_lag"),
    ]
    for mutated, item in cases:
        problems = check(src, mutated)
        if not any(f'"{item}"' in p for p in problems):
            raise SystemExit(f"self-test: removing {item} from docs/ was not reported: {problems}")
    # A reload column that contradicts daemon/reload.cc.
    wrong = dict(docs)
    wrong["config.md"] = wrong["config.md"].replace(
        "| `kafka.group_id` | string | `triaged` | no |", "| `kafka.group_id` | string | `triaged` | yes |")
    if not any('"kafka.group_id"' in p and "reload" in p for p in check(src, wrong)):
        raise SystemExit("self-test: a wrong reload column was not reported")
    # A key the loader accepts but the schema lacks.
    del src.schema["properties"]["trace"]["properties"]["hot_window"]
    if not any('"hot_window"' in p and "schemas/config.v1.json" in p for p in check(src, docs)):
        raise SystemExit("self-test: a key missing from the schema was not reported")
    print(f"self-test: {len(cases) + 2} omissions, each reported")


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        raise SystemExit(__doc__)
    root = Path(args[0])
    src, docs = Sources(root), load_docs(root)
    if "--self-test" in argv:
        self_test(src, docs)
        return 0
    problems = check(src, docs) + check_links(root)
    for p in problems:
        print("docs_coverage: " + p, file=sys.stderr)
    if problems:
        print(f"docs_coverage: {len(problems)} problem(s): undocumented items or broken links", file=sys.stderr)
        return 1
    print(f"docs_coverage: {len(src.config_keys())} config keys, "
          f"{len(src.expression_items())} expression items, {len(src.metrics())} metric "
          "families: all documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
