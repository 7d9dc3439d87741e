#!/usr/bin/env python3
"""Every AWS call in kiln's sources has a row in calls.json, and every row a call: the C sources
of plugins/, builder/ and core/ are scanned for the operation names kiln passes to its AWS client
("DescribeVpcs", "AmazonSSM.GetParameter", S3's "CreateMultipartUpload"...), the instances' user
data template for its `aws <service> <command>` lines. A new call without a row (and so without a
policy decision in test_policy.py) fails here. With --docs FILE, writes the table as Markdown
(docs/aws-calls.md); without, also checks that file is up to date.

Usage: scan_calls.py SOURCE_ROOT [--docs FILE]
       scan_calls.py --self-test   (a tree with a new and a vanished call: both caught)
"""
import glob
import json
import os
import re
import sys

OPERATION = re.compile(
    r'"((?:AmazonSSM\.|Logs_20140328\.)?(?:Abort|Add|Allocate|Assume|Associate|Attach|Authorize|Cancel|Complete|Create|Delete|'
    r'Deregister|Describe|Detach|Disassociate|Filter|Get|Head|List|Modify|Put|Reboot|Register|Release|Remove|'
    r'Revoke|Rollback|Run|Set|Start|Stop|Tag|Terminate|Untag|Update|Upload)[A-Z][A-Za-z]+)"')
USERDATA_CALL = re.compile(r'\baws\b(?:\s+--region\s+\S+)?\s+([a-z0-9-]+)\s+([a-z][a-z-]+)')
# The CloudWatch agent the user data starts: it calls CloudWatch Logs as the instance role.
USERDATA_AGENT = re.compile(r'\b(amazon-cloudwatch-agent)-ctl\b')


def scan(root):
    """{operation name: [files]} from the C sources; {"aws s3 cp": [file]} from the user data."""
    found = {}
    for pattern in ("plugins/**/*.c", "builder/*.c", "core/**/*.c"):
        for path in glob.glob(os.path.join(root, pattern), recursive=True):
            with open(path, encoding="utf-8") as f:
                for m in OPERATION.finditer(f.read()):
                    found.setdefault(m.group(1).split(".")[-1], set()).add(os.path.relpath(path, root))
    for path in glob.glob(os.path.join(root, "share", "aws", "*.tmpl")):
        with open(path, encoding="utf-8") as f:
            for m in USERDATA_CALL.finditer(f.read()):
                found.setdefault("aws %s %s" % m.groups(), set()).add(os.path.relpath(path, root))
            f.seek(0)
            for m in USERDATA_AGENT.finditer(f.read()):
                found.setdefault(m.group(1), set()).add(os.path.relpath(path, root))
    return found


def row_name(api):
    service, name = api.split(":", 1)
    return name


def docs(table):
    lines = ["# AWS calls kiln makes and who may make them",
             "",
             "Generated from `tests/policy/calls.json` by `tests/policy/scan_calls.py --docs` (do not edit).",
             "`tests/policy/test_policy.py` decides every row with an independent IAM evaluator against the policies",
             "kiln renders: **deploy** rows must be allowed for the scoped deploy user and CI role, **setup** rows",
             "(setup, update-policy, teardown with broad credentials) must be denied to them unless marked, **instance**",
             "rows are the enclave instances' role. The request context is what AWS evaluates (Service Authorization",
             "Reference); `also` lists the further authorizations AWS makes for the same call.",
             "",
             "| call | commands | credentials | authorized as | resource | request context |",
             "|---|---|---|---|---|---|"]
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    for r in table["calls"]:
        creds = r["creds"] + (" (deploy keeps it)" if r.get("allowed_for_deploy") else "")
        ctx = ", ".join("`%s`=`%s`" % (k, v if isinstance(v, str) else ",".join(v)) for k, v in r.get("ctx", {}).items())
        extra = "; ".join("%s on `%s`" % (a, res) for a, res, _ in r.get("also", []))
        action = r["action"] + ((" + " + extra) if extra else "")
        note = (" — " + r["note"]) if r.get("note") else ""
        lines.append("| `%s` | %s | %s | %s | `%s` | %s%s |" % (r["api"], esc(r["cmd"]), creds, esc(action),
                                                          r["resource"], esc(ctx), esc(note)))
    lines += ["", "## Denied to the scoped credentials (and the instance role)", "",
              "| case | action | resource |", "|---|---|---|"]
    for r in table["denied"]:
        lines.append("| %s%s | %s | `%s` |" % ("instance role: " if r.get("principal") == "instance" and
                                                not r["case"].startswith("instance role") else "",
                                                esc(r["case"]), r["action"], r["resource"]))
    return "\n".join(lines) + "\n"


def self_test():
    """A tree with one new call and one vanished call: both are caught."""
    import shutil
    import subprocess
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "tests", "policy"))
        os.makedirs(os.path.join(tmp, "plugins", "x"))
        os.makedirs(os.path.join(tmp, "docs"))
        table = {"not_api_calls": {}, "denied": [],
                 "calls": [{"api": "ec2:DescribeVpcs", "cmd": "deploy", "creds": "deploy",
                            "action": "ec2:DescribeVpcs", "resource": "*"}]}
        with open(os.path.join(tmp, "tests", "policy", "calls.json"), "w") as f:
            json.dump(table, f)
        with open(os.path.join(tmp, "docs", "aws-calls.md"), "w") as f:
            f.write(docs(table))
        with open(os.path.join(tmp, "plugins", "x", "new.c"), "w") as f:
            f.write('/* a new call */\nstatic const char *a = "DeleteFlowLogs";\n')
        p = subprocess.run([sys.executable, os.path.abspath(__file__), tmp], capture_output=True, text=True)
        ok = (p.returncode == 1 and "DeleteFlowLogs (in plugins/x/new.c) has no row" in p.stdout and
              "row DescribeVpcs: no such call" in p.stdout)
        print(p.stdout)
        print("self-test: %s" % ("the new and the vanished call are caught" if ok else "FAILED"))
        shutil.rmtree(tmp, ignore_errors=True)
        return 0 if ok else 1


def main():
    if sys.argv[1] == "--self-test":
        return self_test()
    root = sys.argv[1]
    with open(os.path.join(root, "tests", "policy", "calls.json"), encoding="utf-8") as f:
        table = json.load(f)
    doc_path = os.path.join(root, "docs", "aws-calls.md")
    if "--docs" in sys.argv:
        with open(sys.argv[sys.argv.index("--docs") + 1], "w", encoding="utf-8") as f:
            f.write(docs(table))
        return 0
    found = scan(root)
    rows = {}
    for r in table["calls"]:
        name = r["api"].split(":", 1)[1] if not r["api"].startswith("userdata:") else r["api"][len("userdata:"):]
        rows.setdefault(name, []).append(r)
    problems = []
    for name, files in sorted(found.items()):
        if name in table["not_api_calls"]:
            continue
        if name not in rows:
            problems.append("%s (in %s) has no row in tests/policy/calls.json: add one (api, cmd, creds, action, "
                            "resource, ctx) and, for the deploy credentials, the policy statement that allows it"
                            % (name, ", ".join(sorted(files))))
    for name in sorted(rows):
        if name not in found:
            problems.append("calls.json row %s: no such call in the sources any more: remove the row" % name)
    for name in table["not_api_calls"]:
        if name not in found:
            problems.append("calls.json not_api_calls %s: not in the sources any more" % name)
    with open(doc_path, encoding="utf-8") as f:
        if f.read() != docs(table):
            problems.append("docs/aws-calls.md is not calls.json's: run tests/policy/scan_calls.py . --docs "
                            "docs/aws-calls.md")
    for p in problems:
        print("FAIL: " + p)
    print("%d calls in the sources, %d rows, %d problems" % (len(found), len(table["calls"]), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
