#!/usr/bin/env python3
"""Fuzz run of the attestation document parser and verifier: seeds are made here (the vendored
real documents, tagged and base forms, documents signed by a fresh test CA with every optional
field, cut-down variants), a dictionary of the payload keys, then libFuzzer for SECONDS seconds.
Extra arguments go to libFuzzer (e.g. -jobs=1 -workers=1). KILN_FUZZ_CORPUS=DIR keeps the corpus
in DIR (for long campaigns). Usage: run-fuzz-attestation.py FUZZER SECONDS [ARGS...]"""
import os
import shutil
import subprocess
import sys
import tempfile

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TESTS, "attestation"))
import attestlib  # noqa: E402
import cbormini  # noqa: E402

fuzzer, seconds = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-fuzz-attest-")
try:
    corpus = os.environ.get("KILN_FUZZ_CORPUS") or os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    seeds = dict(attestlib.real_documents())
    ca = attestlib.TestCA(os.path.join(work, "ca"))
    pcrs = {i: bytes([i]) * 48 for i in range(16)}
    seeds["test-ca"] = ca.document(pcrs, nonce=b"\x01\x02\x03\x04", user_data=b"u" * 64, public_key=b"k" * 91)
    seeds["test-ca-tagged"] = ca.document({0: bytes(48), 1: bytes(48), 2: bytes(48)}, tagged=True)
    seeds["veracruz-tagged"] = b"\xd2" + seeds["veracruz"]
    env, payload = attestlib.split(seeds["veracruz"])
    payload["cabundle"] = payload["cabundle"][:1]
    seeds["short-bundle"] = attestlib.join(env, payload)
    seeds["empty-envelope"] = cbormini.dumps([b"", {}, b"", b""])
    for name, data in seeds.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    dictionary = os.path.join(work, "cbor.dict")
    with open(dictionary, "w") as f:
        for word in ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key",
                     "user_data", "nonce", "SHA384"):
            f.write('"%s"\n' % "".join("\\x%02x" % b for b in cbormini.dumps(word)))
        f.write('"\\xa1\\x01\\x38\\x22"\n"\\xd2\\x84"\n"\\x58\\x30"\n"\\x58\\x60"\n"\\xf6"\n')
    env = dict(os.environ, KILN_FUZZ_ATTESTATION_ROOT=ca.path("root.pem"))
    args = [fuzzer, "-max_total_time=%s" % seconds, "-max_len=8192", "-print_final_stats=1",
            "-dict=" + dictionary] + sys.argv[3:] + [corpus]
    sys.exit(subprocess.run(args, env=env).returncode)
finally:
    shutil.rmtree(work, ignore_errors=True)
