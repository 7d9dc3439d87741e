"""Test-side pieces for attestation documents: a test CA made with the openssl CLI (root ->
intermediate -> leaf, ECDSA P-384, like the Nitro PKI), NSM-shaped documents signed by its leaf
(COSE_Sign1 ES384), and the real vendored documents taken apart."""
import base64
import os
import subprocess
import time

import cbormini

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data", "attestation")


def real_documents():
    """name -> raw CBOR bytes of the vendored real documents."""
    with open(os.path.join(DATA, "veracruz_aws_nitro_document.cbor"), "rb") as f:
        veracruz = f.read()
    with open(os.path.join(DATA, "evervault_ga_valid-attestation-doc-base64")) as f:
        evervault = base64.b64decode(f.read())
    return {"veracruz": veracruz, "evervault": evervault}


def split(doc):
    """COSE_Sign1 bytes -> (envelope list, payload dict)."""
    env = cbormini.loads(doc)
    if isinstance(env, cbormini.Tag):
        env = env.value
    return env, cbormini.loads(env[2])


def join(env, payload=None):
    """Envelope (and a replacement payload dict) -> COSE_Sign1 bytes; the signature is kept."""
    env = list(env)
    if payload is not None:
        env[2] = cbormini.dumps(payload)
    return cbormini.dumps(env)


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, check=False)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout


EXTENSIONS = """[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[notca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyCertSign
[leaf_nosign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyAgreement
[leaf_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
"""


class TestCA:
    """root -> intermediate -> leaf in directory d; root_subject lets a test CA pose as AWS's."""

    def __init__(self, d, root_subject="/CN=kiln test root", intermediate_ext="intermediate", leaf_ext="leaf"):
        os.makedirs(d, exist_ok=True)
        self.d = d
        ext = self.path("ext.cnf")
        with open(ext, "w") as f:
            f.write(EXTENSIONS)
        for name in ("root", "intermediate", "leaf"):
            openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", self.path(name + ".key"))
        openssl("req", "-new", "-x509", "-config", ext, "-key", self.path("root.key"), "-subj",
                root_subject, "-days", "30", "-sha384", "-extensions", "root",
                "-out", self.path("root.pem"), "-set_serial", "1")
        self._issue("intermediate", "/CN=kiln test intermediate", "root", intermediate_ext, 2)
        self._issue("leaf", "/CN=kiln test enclave", "intermediate", leaf_ext, 3)
        self.root_der = self.der("root")
        self.cabundle = [self.root_der, self.der("intermediate")]
        self.leaf_der = self.der("leaf")

    def path(self, name):
        return os.path.join(self.d, name)

    def _issue(self, name, subject, issuer, ext, serial):
        csr = openssl("req", "-new", "-config", self.path("ext.cnf"), "-key", self.path(name + ".key"), "-subj", subject)
        openssl("x509", "-req", "-CA", self.path(issuer + ".pem"), "-CAkey", self.path(issuer + ".key"),
                "-days", "30", "-sha384", "-extfile", self.path("ext.cnf"), "-extensions", ext,
                "-set_serial", str(serial), "-out", self.path(name + ".pem"), data=csr)

    def der(self, name):
        return openssl("x509", "-in", self.path(name + ".pem"), "-outform", "DER")

    def sign(self, to_be_signed):
        """ES384 over to_be_signed by the leaf key, as COSE's r || s (48 bytes each)."""
        der = openssl("dgst", "-sha384", "-sign", self.path("leaf.key"), data=to_be_signed)
        return der_to_raw(der)

    def document(self, pcrs, nonce=None, timestamp_ms=None, tagged=False, **extra):
        """A document over pcrs ({index: 48 bytes}) signed by this CA's leaf."""
        payload = {"module_id": "i-0123456789abcdef0-enc0123456789abcdef", "digest": "SHA384",
                   "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
                   "pcrs": pcrs, "certificate": self.leaf_der, "cabundle": self.cabundle,
                   "public_key": None, "user_data": None, "nonce": nonce}
        payload.update(extra)
        payload = {k: v for k, v in payload.items() if v is not DROP}
        return self.sign_payload(cbormini.dumps(payload), tagged)

    def sign_payload(self, payload_bytes, tagged=False):
        protected = cbormini.dumps({1: -35})
        tbs = cbormini.dumps(["Signature1", protected, b"", payload_bytes])
        env = [protected, {}, payload_bytes, self.sign(tbs)]
        return cbormini.dumps(cbormini.Tag(18, env) if tagged else env)


DROP = object()  # document(..., nonce=DROP) leaves the key out


def der_to_raw(der):
    """DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> r || s, 48 bytes each."""
    def read_len(b, i):
        n = b[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k
    assert der[0] == 0x30
    _, i = read_len(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n, i = read_len(der, i + 1)
        out += int.from_bytes(der[i:i + n], "big").to_bytes(48, "big")
        i += n
    return out


def pcrs_of_eif(measurements):
    """nitro-cli Measurements -> {index: bytes} for PCR0/1/2 (and 8), the others zero."""
    pcrs = {i: bytes(48) for i in range(16)}
    for i in (0, 1, 2, 8):
        if "PCR%d" % i in measurements:
            pcrs[i] = bytes.fromhex(measurements["PCR%d" % i])
    pcrs[4] = bytes(range(48))  # an instance-specific register, as real documents have
    return pcrs


def measurements_json(pcrs):
    """{index: bytes} -> nitro-cli's {"Measurements": {...}} for --pcrs."""
    m = {"HashAlgorithm": "Sha384 { ... }"}
    for i in (0, 1, 2):
        m["PCR%d" % i] = pcrs[i].hex()
    return {"Measurements": m}
