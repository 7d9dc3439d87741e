"""Shared pieces of kiln's Python test scripts: failures are collected (each printed with what was
expected), and one case runs per invocation so ctest lists every case."""
import shutil
import sys

failures = []


def check(cond, what):
    """Record a failure (the test goes on, so one run reports every broken expectation)."""
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run_case(namespace, case, work=None):
    """Run namespace's function case_<case>, remove work, print a summary and exit 0 or 1."""
    cases = {n[5:]: f for n, f in namespace.items() if n.startswith("case_")}
    if case not in cases:
        print("unknown case %r; known: %s" % (case, " ".join(sorted(cases))))
        sys.exit(2)
    try:
        cases[case]()
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
    print("%s: %d failure(s)" % (case, len(failures)))
    sys.exit(1 if failures else 0)
