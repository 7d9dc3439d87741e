#!/usr/bin/env python3
"""Fuzz run of one libFuzzer target: writes the target's seed corpus (made by fuzz_seeds.py at run
time, nothing committed) and its dictionary, then runs the fuzzer for SECONDS seconds. The
corpus lives in a temporary directory, or in KILN_FUZZ_CORPUS=DIR (kept, for long campaigns).
Extra arguments go to libFuzzer. Usage: run-fuzz.py TARGET FUZZER SECONDS [ARGS...]"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_seeds  # noqa: E402

target, fuzzer, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
work = tempfile.mkdtemp(prefix="kiln-fuzz-%s-" % target)
try:
    corpus = os.environ.get("KILN_FUZZ_CORPUS") or os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    seeds, words, max_len = fuzz_seeds.TARGETS[target]()
    for name, data in seeds.items():
        with open(os.path.join(corpus, "seed-" + name), "wb") as f:
            f.write(data)
    args = [fuzzer, "-max_total_time=%s" % seconds, "-max_len=%d" % max_len, "-print_final_stats=1",
            "-timeout=10"]
    if words:
        dictionary = os.path.join(work, "words.dict")
        with open(dictionary, "w") as f:
            for word in words:
                f.write('"%s"\n' % "".join("\\x%02x" % b for b in word))
        args.append("-dict=" + dictionary)
    env = dict(os.environ, TMPDIR=work)
    sys.exit(subprocess.run(args + sys.argv[4:] + [corpus], env=env).returncode)
finally:
    shutil.rmtree(work, ignore_errors=True)
