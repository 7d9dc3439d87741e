#!/usr/bin/env python3
"""`kiln verify --attestation` through the CLI: real AWS Nitro documents at pinned times, every way
they can be wrong, documents signed by a test CA over a kiln-built EIF's PCRs and served by a test
HTTP server on 127.0.0.1 (with the nonce round trip), and every bad input of issue 16.
Usage: test_attestation.py KILN CASE"""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)
from kilntest import check, run_case  # noqa: E402

import attestlib  # noqa: E402
import cbormini  # noqa: E402

KILN, CASE = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-attest-test-")
REAL = attestlib.real_documents()
# Pinned times inside each document's validity window (leaf certificates live about 3 hours).
WINDOWS = {"veracruz": ("2022-11-09T22:51:57Z", "2022-11-10T01:52:00Z", "2022-11-09T22:52:30Z"),
           "evervault": ("2023-09-18T14:37:09Z", "2023-09-18T17:37:12Z", "2023-09-18T15:04:00Z")}


def path(name):
    return os.path.join(work, name)


def write(name, data):
    with open(path(name), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path(name)


def kiln(*args, env=None, timeout=120):
    e = dict(os.environ, NO_COLOR="1")
    e.update(env or {})
    p = subprocess.run([KILN] + list(args), capture_output=True, text=True, env=e, timeout=timeout)
    # in the asan build a sanitizer report would otherwise hide behind an expected exit 1
    check(not any(s in p.stderr for s in ("Sanitizer", "runtime error:")),
          "kiln %s: no sanitizer report: %s" % (" ".join(args[:3]), p.stderr[-2000:]))
    return p


def verify_json(*args, **kw):
    """kiln verify --attestation ... --json -> (process, document, {check name: check})."""
    p = kiln("verify", "--attestation", *args, "--json", **kw)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = {}
    return p, doc, {c["name"]: c for c in doc.get("checks", [])}


def own_pcrs(name):
    """--pcrs FILE made from the document's own PCR0/1/2."""
    _, payload = attestlib.split(REAL[name])
    return write(name + "-pcrs.json", json.dumps(attestlib.measurements_json(payload["pcrs"])))


def real_args(name, doc=None, nonce=True):
    """Arguments that make the real document pass at its pinned time."""
    _, payload = attestlib.split(REAL[name])
    f = write(name + ".cbor", doc if doc is not None else REAL[name])
    args = [f, "--pcrs", own_pcrs(name), "--at", WINDOWS[name][2]]
    if nonce:
        args += ["--nonce", payload["nonce"].hex()]
    if name == "evervault":
        args.append("--allow-debug")
    return args


def failed(checks):
    return sorted(n for n, c in checks.items() if c["result"] == "fail")


def case_real_documents_pass():
    for name in REAL:
        p, doc, checks = verify_json(*real_args(name))
        check(p.returncode == 0 and doc.get("verified") is True,
              "%s at its pinned time verifies: %s %s" % (name, failed(checks), p.stderr))
        for c in ("cabundle root", "chain", "leaf certificate", "signature", "timestamp", "nonce",
                  "debug mode", "PCR0", "PCR1", "PCR2"):
            check(checks.get(c, {}).get("result") == "ok", "%s: check %r is ok: %s" % (name, c, checks.get(c)))
        check(doc.get("trust_anchor", {}).get("aws_nitro_root") is True and
              doc["trust_anchor"].get("sha256") == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b",
              "%s: the pinned AWS root is the anchor" % name)
        # the same in text: one line per check, exit 0
        t = kiln("verify", "--attestation", *real_args(name))
        check(t.returncode == 0 and "verified:" in t.stdout, "%s: text output verifies: %s" % (name, t.stderr))
        for c in ("chain", "signature", "nonce", "PCR0"):
            check(any(line.startswith("ok") and c in line for line in t.stdout.splitlines()),
                  "%s: text has an ok line for %s" % (name, c))
    # anywhere inside the leaf's window (freshness widened to the whole window)
    _, payload = attestlib.split(REAL["veracruz"])
    for at in ("2022-11-09T22:51:58Z", "2022-11-10T00:30:00Z", "2022-11-10T01:51:59Z"):
        args = real_args("veracruz")
        args[args.index("--at") + 1] = at
        p, doc, checks = verify_json(*args, "--max-skew", "4h")
        check(p.returncode == 0, "veracruz verifies at %s: %s" % (at, failed(checks)))
    # tag 18 around the same document verifies too
    p, doc, checks = verify_json(*real_args("veracruz", doc=b"\xd2" + REAL["veracruz"]))
    check(p.returncode == 0, "tag 18 COSE_Sign1 verifies: %s" % failed(checks))
    # and the document as base64 (how other tools publish them)
    import base64
    args = real_args("veracruz")
    args[0] = write("doc.b64", base64.encodebytes(REAL["veracruz"]))
    check(verify_json(*args)[0].returncode == 0, "base64 document verifies")


def case_real_documents_expired():
    for name, (start, end, _) in WINDOWS.items():
        for at, why in ((end.replace(":00Z", ":01Z").replace(":12Z", ":13Z"), "has expired"),
                        ("2030-01-01T00:00:00Z", "has expired"),
                        ("2019-01-01T00:00:00Z", "not yet valid")):
            args = real_args(name)
            args[args.index("--at") + 1] = at
            p, doc, checks = verify_json(*args, "--max-skew", "3650d")
            chain = checks.get("chain", {})
            check(p.returncode == 1 and chain.get("result") == "fail" and why in chain.get("detail", ""),
                  "%s at %s: chain fails (%s): %s" % (name, at, why, chain))
            check(failed(checks) == ["chain"], "%s at %s: only the chain fails: %s" % (name, at, failed(checks)))
        # the text names the check and the certificate's window
        args = real_args(name)
        args[args.index("--at") + 1] = "2030-01-01T00:00:00Z"
        t = kiln("verify", "--attestation", *args)
        check(t.returncode == 1 and "FAIL    chain" in t.stdout and "valid " in t.stdout and
              "chain" in t.stderr, "%s: text names the expired chain: %s" % (name, t.stdout[-400:]))


def case_flipped_signature():
    for name in REAL:
        env, payload = attestlib.split(REAL[name])
        for i in (0, 47, 48, 95):
            sig = bytearray(env[3])
            sig[i] ^= 0x01
            bad = attestlib.join([env[0], env[1], env[2], bytes(sig)])
            p, doc, checks = verify_json(*real_args(name, doc=bad))
            check(p.returncode == 1 and failed(checks) == ["signature"],
                  "%s: signature byte %d flipped: only the signature fails: %s" % (name, i, failed(checks)))
        # one payload byte changed (a PCR): the signature no longer covers it
        body = bytearray(env[2])
        body[body.find(payload["pcrs"][0]) + 5] ^= 0x80
        bad = attestlib.join([env[0], env[1], bytes(body), env[3]])
        p, doc, checks = verify_json(*real_args(name, doc=bad))
        check(p.returncode == 1 and "signature" in failed(checks), "%s: altered PCR0 breaks the signature" % name)


def case_truncated():
    env, _ = attestlib.split(REAL["veracruz"])
    pcrs = own_pcrs("veracruz")
    count = 0
    for cut in range(97, len(env[2]), 97):
        # the payload cut inside a well-formed envelope
        doc = attestlib.join([env[0], env[1], env[2][:cut], env[3]])
        p, out, checks = verify_json(write("cut.cbor", doc), "--pcrs", pcrs, "--at", WINDOWS["veracruz"][2])
        ok = p.returncode == 1 and list(checks) == ["parse"] and "payload" in checks["parse"]["detail"]
        check(ok, "payload truncated at %d: a parse failure naming the payload: %s" % (cut, checks))
        count += 1
    for cut in range(97, len(REAL["veracruz"]), 97):
        p, out, checks = verify_json(write("cut.cbor", REAL["veracruz"][:cut]), "--pcrs", pcrs)
        check(p.returncode == 1 and list(checks) == ["parse"], "document truncated at %d: parse fails" % cut)
        count += 1
    check(count > 80, "every 97th byte was tried (%d cuts)" % count)


def case_cabundle_root_replaced():
    ca = attestlib.TestCA(path("fake-aws"), root_subject="/C=US/O=Amazon/OU=AWS/CN=aws.nitro-enclaves")
    for name in REAL:
        env, payload = attestlib.split(REAL[name])
        payload["cabundle"] = [ca.root_der] + payload["cabundle"][1:]
        p, doc, checks = verify_json(*real_args(name, doc=attestlib.join(env, payload)))
        check(p.returncode == 1 and "cabundle root" in failed(checks),
              "%s: a self-made cabundle root is named: %s" % (name, failed(checks)))
        check("not the trust anchor" in checks.get("cabundle root", {}).get("detail", ""),
              "%s: says cabundle[0] is not the anchor" % name)


def case_self_made_chain():
    """A test CA posing as AWS (same root name) signs a perfect document: not the AWS root."""
    ca = attestlib.TestCA(path("fake-aws"), root_subject="/C=US/O=Amazon/OU=AWS/CN=aws.nitro-enclaves")
    pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
    f = write("fake.cbor", ca.document(pcrs, nonce=b"\x01\x02"))
    expected = write("fake-pcrs.json", json.dumps(attestlib.measurements_json(pcrs)))
    p, doc, checks = verify_json(f, "--pcrs", expected, "--nonce", "0102")
    check(p.returncode == 1 and failed(checks) == ["cabundle root", "chain"],
          "self-made chain fails on the root only: %s" % failed(checks))
    check(checks.get("signature", {}).get("result") == "ok", "(its signature itself is fine)")
    # the same with the test root as --root: passes, and says loudly whose anchor it is
    p, doc, checks = verify_json(f, "--pcrs", expected, "--nonce", "0102", "--root", ca.path("root.pem"))
    check(p.returncode == 0, "with --root the test CA's document verifies: %s" % failed(checks))
    check("trust anchor: %s, not the AWS Nitro root" % ca.path("root.pem") in p.stderr,
          "--root is announced: %s" % p.stderr)
    check(doc.get("trust_anchor", {}).get("aws_nitro_root") is False, "--json says the anchor is not AWS's")
    # an intermediate that is not a CA cannot issue the leaf
    bad = attestlib.TestCA(path("notca"), intermediate_ext="notca")
    f = write("notca.cbor", bad.document(pcrs, nonce=b"\x01\x02"))
    p, doc, checks = verify_json(f, "--pcrs", expected, "--nonce", "0102", "--root", bad.path("root.pem"))
    check(p.returncode == 1 and "chain" in failed(checks), "a non-CA intermediate breaks the chain: %s" % checks.get("chain"))
    # a leaf that may not sign, or that is a CA, cannot vouch for a document
    for ext, why in (("leaf_nosign", "digitalSignature"), ("leaf_ca", "is a CA")):
        bad = attestlib.TestCA(path(ext), leaf_ext=ext)
        f = write(ext + ".cbor", bad.document(pcrs, nonce=b"\x01\x02"))
        p, doc, checks = verify_json(f, "--pcrs", expected, "--nonce", "0102", "--root", bad.path("root.pem"))
        leaf = checks.get("leaf certificate", {})
        check(p.returncode == 1 and leaf.get("result") == "fail" and why in leaf.get("detail", ""),
              "%s: the leaf check fails: %s" % (ext, leaf))


def case_wrong_nonce():
    args = real_args("veracruz")
    sent = "00" * 32
    args[args.index("--nonce") + 1] = sent
    p, doc, checks = verify_json(*args)
    n = checks.get("nonce", {})
    check(p.returncode == 1 and failed(checks) == ["nonce"], "wrong nonce: only the nonce fails: %s" % failed(checks))
    check(n.get("expected") == sent and n.get("actual", "").startswith("c678c861"),
          "the nonce check shows both values: %s" % n)
    t = kiln("verify", "--attestation", *args)
    check("expected " + sent in t.stdout and "actual   c678c861" in t.stdout, "text shows both nonces")
    # no --nonce for a file: the check is skipped, not passed
    p, doc, checks = verify_json(*real_args("veracruz", nonce=False))
    check(p.returncode == 0 and checks.get("nonce", {}).get("result") == "skipped", "no --nonce: nonce skipped")
    check(kiln("verify", "--attestation", args[0], "--nonce", "xyz", "--pcrs", args[2]).returncode == 1,
          "--nonce that is not hex is refused")


def case_wrong_pcr0():
    _, payload = attestlib.split(REAL["veracruz"])
    m = attestlib.measurements_json(payload["pcrs"])
    m["Measurements"]["PCR0"] = "ab" * 48
    args = real_args("veracruz")
    args[args.index("--pcrs") + 1] = write("wrong.json", json.dumps(m))
    p, doc, checks = verify_json(*args)
    c = checks.get("PCR0", {})
    check(p.returncode == 1 and failed(checks) == ["PCR0"], "wrong PCR0: only PCR0 fails: %s" % failed(checks))
    check(c.get("expected") == "ab" * 48 and c.get("actual") == payload["pcrs"][0].hex(), "PCR0 values shown")
    t = kiln("verify", "--attestation", *args)
    check("FAIL    PCR0" in t.stdout and "ab" * 48 in t.stdout and "PCR0" in t.stderr, "text names PCR0")
    # PCR8 is compared when the expected set has one (a signed EIF)
    m = attestlib.measurements_json(payload["pcrs"])
    m["Measurements"]["PCR8"] = "cd" * 48
    args[args.index("--pcrs") + 1] = write("pcr8.json", json.dumps(m))
    p, doc, checks = verify_json(*args)
    check(failed(checks) == ["PCR8"], "expected PCR8 is compared: %s" % failed(checks))


def case_debug_mode():
    args = real_args("evervault")
    args.remove("--allow-debug")
    p, doc, checks = verify_json(*args)
    check(p.returncode == 1 and failed(checks) == ["debug mode"], "all-zero PCRs fail: %s" % failed(checks))
    check("--allow-debug" in checks.get("debug mode", {}).get("detail", ""), "the failure names --allow-debug")
    p, doc, checks = verify_json(*args, "--allow-debug")
    check(p.returncode == 0 and checks.get("debug mode", {}).get("result") == "ok", "--allow-debug accepts them")


def case_root_pinning():
    """The vendored root is checked against its fingerprint when loaded."""
    share = path("share")
    os.makedirs(os.path.join(share, "attestation"))
    ca = attestlib.TestCA(path("ca"))
    with open(ca.path("root.pem")) as src, open(os.path.join(share, "attestation/aws-nitro-root-g1.pem"), "w") as dst:
        dst.write(src.read())
    p = kiln("verify", "--attestation", *real_args("veracruz"), env={"KILN_SHARE_DIR": share})
    check(p.returncode == 1 and "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b" in p.stderr
          and "reinstall" in p.stderr, "a swapped root file is refused: %s" % p.stderr)


def case_parser_limits():
    ca = attestlib.TestCA(path("ca"))
    root = ca.path("root.pem")
    pcrs = {i: bytes(48) for i in range(3)}
    cases = {
        "nonce": dict(nonce=b"n" * 513),
        "user_data": dict(user_data=b"u" * 513),
        "public_key": dict(public_key=b"k" * 513),
        "PCR1": dict(pcrs={0: bytes(48), 1: bytes(32), 2: bytes(48)}),
        "pcrs": dict(pcrs={i: bytes(48) for i in range(33)}),
        "digest": dict(digest="SHA256"),
        "timestamp": dict(timestamp=0),
        "module_id": dict(module_id=""),
        "certificate": dict(certificate=b"c" * 1025),
        "cabundle": dict(cabundle=[]),
        "unknown": dict(extra_field=1),
        "missing": dict(certificate=attestlib.DROP),
    }
    for what, extra in cases.items():
        doc = ca.document(extra.pop("pcrs", pcrs), **extra)
        p, out, checks = verify_json(write("limit.cbor", doc), "--pcrs", own_pcrs("veracruz"), "--root", root)
        detail = checks.get("parse", {}).get("detail", "")
        check(p.returncode == 1 and list(checks) == ["parse"] and
              (what in detail or what in ("unknown", "missing")), "limit %s: %s" % (what, detail))
    # at the limits: 512-byte nonce/user_data and 32 PCRs parse
    doc = ca.document({i: bytes(48) for i in range(32)}, nonce=b"n" * 512, user_data=b"u" * 512)
    p, out, checks = verify_json(write("max.cbor", doc), "--pcrs", own_pcrs("veracruz"), "--root", root)
    check("parse" not in checks, "512-byte fields and 32 PCRs parse: %s" % checks.get("parse"))
    # a protected header other than ES384, and a signature of the wrong size
    env, payload = attestlib.split(doc)
    for bad, what in (([cbormini.dumps({1: -7}), {}, env[2], env[3]], "protected header"),
                      ([env[0], {}, env[2], env[3][:64]], "signature"),
                      ([env[0], {4: b"kid"}, env[2], env[3]], "unprotected"),
                      (cbormini.Tag(17, env), "tag other than 18")):
        p, out, checks = verify_json(write("bad.cbor", cbormini.dumps(bad)), "--pcrs", own_pcrs("veracruz"))
        check(list(checks) == ["parse"] and what in checks["parse"]["detail"], "%s: %s" % (what, checks))
    # a document file over 16 KiB
    big = ca.document(pcrs) + b"\0" * 16384
    p, out, checks = verify_json(write("big.cbor", big), "--pcrs", own_pcrs("veracruz"))
    check(p.returncode == 1 and "16384" in checks.get("parse", {}).get("detail", ""), "> 16 KiB file refused")
    # not CBOR at all, and an empty file
    for junk in (b"\x84" + b"\xff" * 40, b""):
        p, out, checks = verify_json(write("junk.cbor", junk), "--pcrs", own_pcrs("veracruz"))
        check(p.returncode == 1 and list(checks) == ["parse"], "junk %r is a parse failure" % junk[:4])


def case_usage():
    h = kiln("verify", "--help")
    check(h.returncode == 0 and "--attestation" in h.stdout and "--allow-debug" in h.stdout and
          "--root" in h.stdout and "--at" in h.stdout, "help teaches --attestation")
    for args, what in ((["--attestation"], "needs"), (["--attestation", "x", "--at", "yesterday"], "RFC 3339"),
                       (["--attestation", "x", "--pcrs", "a", "--eif", "b"], "not both"),
                       (["--attestation", "http://127.0.0.1:1/", "--nonce", "00"], "fresh"),
                       (["--attestation", "x", "--timeout", "0"], "seconds"),
                       (["--attestation", "x", "--max-skew", "soon"], "duration")):
        p = kiln("verify", *args)
        check(p.returncode == 2 and what in p.stderr, "usage error %s: %s" % (args, p.stderr))
    # --at takes RFC 3339 with offsets and fractions
    for at, want in (("2022-11-09T23:52:30+01:00", "2022-11-09T22:52:30.000Z"),
                     ("2022-11-09T20:22:30.25-02:30", "2022-11-09T22:52:30.250Z"),
                     ("2022-11-09t22:52:30.123456z", "2022-11-09T22:52:30.123Z")):
        args = real_args("veracruz")
        args[args.index("--at") + 1] = at
        p, doc, checks = verify_json(*args)
        check(p.returncode == 0 and doc.get("verification_time") == want, "--at %s is %s: %s" %
              (at, want, doc.get("verification_time")))
    p, doc, checks = verify_json(path("missing.cbor"), "--pcrs", own_pcrs("veracruz"))
    check(p.returncode == 1 and "missing.cbor" in checks.get("read", {}).get("detail", ""), "missing file named")
    p = kiln("verify", "--attestation", REAL and write("v.cbor", REAL["veracruz"]), "--pcrs", path("nope.json"))
    check(p.returncode == 1 and "nope.json" in p.stderr, "missing --pcrs file named: %s" % p.stderr)


# ---- the positive end-to-end path: a kiln-built EIF, a test CA and a test attestation server ----

class AttestationServer:
    """A threaded HTTP server on 127.0.0.1 that answers like kiln's enclave endpoint: a document
    for the nonce it receives, signed by the test CA over the given PCRs; other paths misbehave."""

    def __init__(self, ca, pcrs):
        outer = self
        self.ca, self.pcrs, self.nonces = ca, pcrs, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, status, body, ctype="application/cbor"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                nonce = bytes.fromhex(q.get("nonce", [""])[0])
                outer.nonces.append((url.path, q))
                route = url.path.rstrip("/").rsplit("/", 1)[-1]
                if route == "slow":
                    time.sleep(4)
                    return self.answer(200, outer.ca.document(outer.pcrs, nonce=nonce))
                if route == "unavailable":
                    return self.answer(503, b"no NSM device (/dev/nsm is missing)\n", "text/plain")
                if route == "garbage":
                    return self.answer(200, b"\xff\x00 this is not CBOR")
                if route == "html":
                    return self.answer(200, b"<html>hello</html>", "text/html")
                if route == "huge":
                    return self.answer(200, b"\x84" + b"\0" * 17000)
                if route == "no-nonce":
                    return self.answer(200, outer.ca.document(outer.pcrs, nonce=attestlib.DROP))
                if route == "skew":
                    ts = int(time.time() * 1000) + 10 * 60 * 1000 + 500
                    return self.answer(200, outer.ca.document(outer.pcrs, nonce=nonce, timestamp_ms=ts))
                return self.answer(200, outer.ca.document(outer.pcrs, nonce=nonce))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def tiny_eif(signed):
    """A small EIF built by kiln eif-build from generated files; returns (path, Measurements)."""
    kernel, rd1, rd2 = write("bzImage", os.urandom(3000)), write("rd1", b"boot" * 100), write("rd2", os.urandom(5000))
    out = path("signed.eif" if signed else "app.eif")
    extra = []
    if signed:
        attestlib.openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path("sign.key"))
        attestlib.openssl("req", "-new", "-x509", "-config", os.devnull, "-key", path("sign.key"), "-subj",
                          "/CN=kiln signer", "-days", "30", "-out", path("sign.pem"))
        extra = ["--signing-certificate", path("sign.pem"), "--private-key", path("sign.key")]
    p = kiln("eif-build", "--kernel", kernel, "--cmdline", "console=ttyS0", "--ramdisk", rd1, "--ramdisk", rd2,
             "--output", out, *extra)
    check(p.returncode == 0, "kiln eif-build: %s" % p.stderr)
    return out, json.loads(p.stdout)["Measurements"] if p.returncode == 0 else {}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_end_to_end():
    ca = attestlib.TestCA(path("ca"))
    for signed in (False, True):
        eif, m = tiny_eif(signed)
        srv = AttestationServer(ca, attestlib.pcrs_of_eif(m))
        try:
            for url in (srv.url + "/attestation", srv.url + "/attestation?user_data=00ff"):
                p, doc, checks = verify_json(url, "--eif", eif, "--root", ca.path("root.pem"))
                check(p.returncode == 0 and doc.get("verified") is True,
                      "signed=%s %s: verifies by URL: %s %s" % (signed, url, failed(checks), p.stderr))
                sent = srv.nonces[-1][1].get("nonce", [""])[0]
                check(len(sent) == 64 and checks.get("nonce", {}).get("expected") == sent and
                      checks["nonce"]["result"] == "ok", "the fresh nonce made the round trip: %s" % checks.get("nonce"))
                check(("PCR8" in checks) == signed, "PCR8 compared exactly when the EIF is signed")
                check("trust anchor: %s, not the AWS Nitro root" % ca.path("root.pem") in p.stderr,
                      "the test anchor is announced")
            check("user_data" in srv.nonces[-1][1], "an existing query is kept (&nonce=)")
            nonces = [q["nonce"][0] for _, q in srv.nonces]
            check(len(set(nonces)) == len(nonces), "every request has its own nonce")
            t = kiln("verify", "--attestation", srv.url + "/attestation", "--eif", eif, "--root", ca.path("root.pem"))
            check(t.returncode == 0 and "verified:" in t.stdout, "text output verifies")
            check("trust anchor: %s, not the AWS Nitro root" % ca.path("root.pem") in t.stdout,
                  "the text report names the replaced anchor too")
            # the same server, but another EIF is expected: PCRs differ, named
            other, _ = tiny_eif(False) if signed else (None, None)
            if other:
                p, doc, checks = verify_json(srv.url + "/attestation", "--eif", other, "--root", ca.path("root.pem"))
                check(p.returncode == 1 and {"PCR0", "PCR2"} <= set(failed(checks)), "another EIF differs: %s" % failed(checks))
            # without --root the AWS anchor refuses the test CA
            p, doc, checks = verify_json(srv.url + "/attestation", "--eif", eif)
            check(p.returncode == 1 and "chain" in failed(checks), "the AWS root refuses the test CA")
        finally:
            srv.stop()


def case_bad_endpoints():
    ca = attestlib.TestCA(path("ca"))
    eif, m = tiny_eif(False)
    srv = AttestationServer(ca, attestlib.pcrs_of_eif(m))
    root = ["--eif", eif, "--root", ca.path("root.pem")]
    try:
        cases = [
            ("http://127.0.0.1:%d/attestation" % free_port(), "fetch", "cannot reach"),
            (srv.url + "/slow", "fetch", "did not answer within 1 s"),
            (srv.url + "/garbage", "parse", "not one CBOR item"),
            (srv.url + "/unavailable", "fetch", "503"),
            (srv.url + "/html", "fetch", "text/html"),
            (srv.url + "/huge", "fetch", "larger than 16384"),
        ]
        for url, stage, what in cases:
            started = time.monotonic()
            p, doc, checks = verify_json(url, *root, "--timeout", "1")
            detail = checks.get(stage, {}).get("detail", "")
            check(p.returncode == 1 and doc.get("verified") is False and what in detail,
                  "%s: %s fails with %r: %s" % (url, stage, what, checks))
            check(time.monotonic() - started < 30, "%s: answered promptly" % url)
        p, doc, checks = verify_json(srv.url + "/unavailable", *root)
        check("no NSM device" in checks.get("fetch", {}).get("detail", ""), "503 shows the server's reason")
        t = kiln("verify", "--attestation", srv.url + "/unavailable", *root)
        check(t.returncode == 1 and "no NSM device" in t.stdout and "fetch" in t.stderr, "text: 503 reason")
        p, doc, checks = verify_json(srv.url + "/no-nonce", *root)
        n = checks.get("nonce", {})
        check(p.returncode == 1 and failed(checks) == ["nonce"] and "missing" in n.get("detail", ""),
              "a missing nonce echo fails the nonce check: %s" % n)
        p, doc, checks = verify_json(srv.url + "/skew", *root)
        ts = checks.get("timestamp", {})
        check(p.returncode == 1 and failed(checks) == ["timestamp"] and "is 10m00s after" in ts.get("detail", ""),
              "clock skew says by how much: %s" % ts)
        p, doc, checks = verify_json(srv.url + "/skew", *root, "--max-skew", "11m")
        check(p.returncode == 0, "--max-skew widens the window")
    finally:
        srv.stop()


def case_rebuild():
    """No --pcrs/--eif: the expected PCRs come from rebuilding the app (kiln.json + kiln.lock)."""
    import shutil
    root = os.path.dirname(os.path.dirname(HERE))
    app, cache = path("app"), path("cache")
    shutil.copytree(os.path.join(root, "share/examples/hello"), app)
    os.makedirs(os.path.join(app, "rootfs/bin"))
    subprocess.run([os.environ.get("CC", "cc"), "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/hello"),
                    os.path.join(app, "hello.c")], check=True)
    with open(os.path.join(app, "kiln.json")) as f:
        cfg = json.load(f)
    cfg["kernel"]["source"] = "debian-cloud:6.12"
    with open(os.path.join(app, "kiln.json"), "w") as f:
        json.dump(cfg, f)
    env = {"KILN_CACHE_DIR": cache}
    b = kiln("-C", app, "build", "--json", env=env, timeout=600)
    check(b.returncode == 0, "kiln build: %s" % b.stderr[-500:])
    if b.returncode != 0:
        return
    m = json.loads(b.stdout)["Measurements"]
    ca = attestlib.TestCA(path("ca"))
    good = AttestationServer(ca, attestlib.pcrs_of_eif(m))
    other = attestlib.pcrs_of_eif(m)
    other[1] = bytes(range(100, 148))
    bad = AttestationServer(ca, other)
    try:
        p, doc, checks = verify_json(good.url + "/attestation", "--root", ca.path("root.pem"), "-C", app, env=env)
        check(p.returncode == 0 and "rebuild" in doc.get("expected_pcrs_from", ""),
              "the enclave runs what kiln.json + kiln.lock build: %s %s" % (failed(checks), p.stderr[-300:]))
        p, doc, checks = verify_json(bad.url + "/attestation", "--root", ca.path("root.pem"), "-C", app, env=env)
        check(p.returncode == 1 and failed(checks) == ["PCR1"], "a different kernel (PCR1) is named: %s" % failed(checks))
        p = kiln("verify", "--attestation", good.url + "/attestation", "-C", path("cache"), env=env)
        check(p.returncode == 1 and "kiln.json" in p.stderr, "no app and no --pcrs/--eif: %s" % p.stderr[-300:])
    finally:
        good.stop()
        bad.stop()


run_case(globals(), CASE, work)
