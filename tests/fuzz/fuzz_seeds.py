"""Seed corpora and dictionaries of the libFuzzer targets, made at run time (no committed blobs).
TARGETS maps a target name to a function returning (seeds {name: bytes}, dictionary words
[bytes], max_len). Seeds named regress-* are the inputs of fixed findings: every smoke run
replays them first."""
import glob
import gzip
import io
import json
import os
import struct
import tarfile

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def example_value(schema, depth=0):
    """A value of the schema's type, preferring its default, first example or first enum value."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    for key in ("default", "enum", "examples"):
        if key in schema:
            return schema[key] if key == "default" else schema[key][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {k: example_value(v, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_value(schema.get("items", {}), depth + 1)]
    return {"string": "x", "integer": schema.get("minimum", 1), "number": 1.5, "boolean": True}.get(kind)


def sigv4():
    """Requests in fuzz_sigv4.c's line format: flags, time, method, path, region, service, hash,
    query lines, empty line, header lines."""
    when = struct.pack("<I", 1440938160)  # 2015-08-30T12:36:00Z, the AWS test suite's date

    def req(flags, lines):
        return bytes([flags]) + when + "\n".join(lines).encode()

    seeds = {
        "get-vanilla": req(2, ["GET", "/", "us-east-1", "service", "", "", "Host:example.amazonaws.com"]),
        "query-order": req(2, ["GET", "/", "us-east-1", "service", "", "Param2=value2", "Param1=value1",
                               "", "Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"]),
        "dot-segments": req(2, ["GET", "/example/../..//./a b/%41", "us-east-1", "service", "", "",
                                "host:example.amazonaws.com"]),
        "s3-put": req(0x84, ["PUT", "/bucket/key with spaces/~x", "eu-west-1", "s3",
                             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "uploadId=a+b",
                             "partNumber=1", "", "host:bucket.s3.amazonaws.com", "X-Amz-Meta-A:  two   spaces  ",
                             "content-type:text/plain"]),
        "presign": req(0x18, ["GET", "/test.txt", "us-east-1", "s3", "UNSIGNED-PAYLOAD", "", "host:examplebucket.s3.amazonaws.com"]),
        "multiline-header": req(6, ["POST", "/", "us-east-1", "sts", "", "Action=AssumeRole", "", "host:sts.amazonaws.com",
                                    "my-header1:value1\tvalue2", "My-Header1:value3"]),
        "utf8": "\x02\x00\x00\x00\x00GET\n/\u00e9\u20ac\nus-east-1\nservice\n\n\u1234=\u00fc\n\nhost:h".encode(),
    }
    words = [b"\n", b"%", b"%2F", b"/../", b"/./", b"//", b"=", b":", b"host:", b"x-amz-", b"UNSIGNED-PAYLOAD"]
    return seeds, words, 2048


def aws_xml():
    """AWS response and error bodies of the shapes S3, STS, EC2 and the JSON services send."""
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n'
    ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    parts = "".join('<Part><PartNumber>%d</PartNumber><ETag>&quot;%032x&quot;</ETag><Size>%d</Size>'
                    '<ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part>' % (i, i, 5 << 20) for i in range(1, 4))
    seeds = {
        "list-parts": decl + '<ListPartsResult%s><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId>'
                             '<NextPartNumberMarker>3</NextPartNumberMarker><IsTruncated>true</IsTruncated>%s'
                             '</ListPartsResult>' % (ns, parts),
        "create-multipart": decl + '<InitiateMultipartUploadResult%s><Bucket>b</Bucket><Key>a/b c</Key>'
                                   '<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>' % ns,
        "complete-error-in-200": decl + '\n\n<Error><Code>InternalError</Code><Message>We encountered an '
                                        'internal error.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>',
        "list-uploads": '<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><NextKeyMarker>k</NextKeyMarker>'
                        '<NextUploadIdMarker>u</NextUploadIdMarker><Upload><Key>k</Key><UploadId>u</UploadId>'
                        '<Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>',
        "s3-error": '<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>'
                    '<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>',
        "query-error": '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                       '<Code>ExpiredToken</Code><Message>The security token included in the request is expired'
                       '</Message></Error><RequestId>a-b-c</RequestId></ErrorResponse>',
        "ec2-error": '<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID '
                     '&apos;i-1&apos; does not exist</Message></Error></Errors><RequestID>ea966190</RequestID>'
                     '</Response>',
        "sts-assume-role": '<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</AccessKeyId>'
                           '<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>'
                           '2026-12-06T20:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>',
        "ec2-describe": '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet>'
                        '<item><instancesSet><item><instanceId>i-1</instanceId><enclaveOptions><enabled>true</enabled>'
                        '</enclaveOptions><tagSet><item><key>kiln</key><value>a&amp;b</value></item></tagSet></item>'
                        '</instancesSet></item></reservationSet></DescribeInstancesResponse>',
        "json-error": '{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}',
        # regression: a CR in a text (&#13;) must survive kiln_xml_escape and a second parse
        "regress-cr": '<CompleteMultipartUpload><Part><ETag>a&#13;b&#13;\r\nc</ETag></Part></CompleteMultipartUpload>',
        "cdata-entities": '<a:Error xmlns:a="urn:x"><Code><![CDATA[x<y]]></Code><Message>&#x41;&#66;&lt;</Message></a:Error>',
    }
    words = [b"<Error>", b"</Error>", b"<Code>", b"<Message>", b"<RequestId>", b"<Part>", b"<![CDATA[", b"]]>",
             b"&amp;", b"&#x", b"<!DOCTYPE a [<!ENTITY e \"x\">]>", b"&e;", b"xmlns:", b"<?xml ?>"]
    return {k: v.encode() for k, v in seeds.items()}, words, 8192


def cpio():
    """Writer programs in fuzz_cpio.c's format: op, perm (2), owner, name, then per op: file
    (declared size, length delta + 1, data), symlink (target), hard links (count - 1, names, size,
    data), raw header (mode (4), nlink, size, rdev major, minor, inode (2), data), stray data."""
    def name(s):
        return bytes([len(s)]) + s

    def op(kind, perm, path, rest=b""):
        return bytes([kind]) + struct.pack(">H", perm) + b"\0" + name(path) + rest

    rootfs = (op(0, 0o755, b"rootfs") + op(0, 0o755, b"rootfs/etc") +
              op(1, 0o644, b"rootfs/etc/passwd", b"\x0b\x01root:x:0:0\n") +
              op(2, 0, b"rootfs/bin", name(b"usr/bin")) +
              op(3, 0o755, b"rootfs/usr/bin/a", b"\x02" + name(b"rootfs/usr/bin/b") + name(b"rootfs/usr/bin/c") +
                 b"\x05hello") +
              op(4, 0, b"rootfs/dev/console", struct.pack(">I", 0o20600) + b"\x01\x00\x05\x01\x00\x00") +
              op(4, 0, b"init", struct.pack(">I", 0o100755) + b"\x01\x04\x00\x00\x00\x07" + b"#!/x"))
    seeds = {
        "rootfs": b"\x00" + rootfs,
        "rootfs-hashed": b"\x01" + rootfs,
        "short-data": b"\x00" + op(1, 0o644, b"f", b"\x08\x00abc"),
        "long-data": b"\x00" + op(1, 0o644, b"f", b"\x02\x02abc"),
        "bad-names": b"\x00" + op(0, 0o755, b"/abs") + op(0, 0o755, b"") + op(0, 0o755, b"TRAILER!!!"),
        "stray-data": b"\x02" + op(5, 0, b"", b"\x04abcd") + op(0, 0o7777, b"d" * 200),
    }
    words = [b"rootfs/", b"TRAILER!!!", b"/", b"..", struct.pack(">I", 0o100644), struct.pack(">I", 0o40755),
             struct.pack(">I", 0o120777)]
    return seeds, words, 4096


def kiln_json():
    """kiln.json files: the shipped example, one with every stage section filled from the plugins'
    option schemas (defaults and examples), broken variants, and the schemas themselves."""
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    example = read(os.path.join(SOURCE, "share", "examples", "hello", "kiln.json"))
    full = json.loads(example)
    seeds = {"example": example}
    for path in sorted(glob.glob(os.path.join(SOURCE, "plugins", "*", "options.schema.json"))):
        plugin = os.path.basename(os.path.dirname(path))
        schema = json.loads(read(path))
        full[plugin] = example_value(schema)
        seeds["schema-" + plugin] = read(path)
    seeds["schema-top"] = read(os.path.join(SOURCE, "share", "kiln.schema.json"))
    seeds["full"] = json.dumps(full, indent=1).encode()
    seeds["wrong-types"] = json.dumps({"name": 3, "enclave": {"cpus": "two", "memory_mib": -1}, "steps": {},
                                       "plugins": [1]}).encode()
    seeds["unknown-key"] = b'{"name": "a", "imgae": "dir:x"}'
    seeds["not-object"] = b'["name"]'
    seeds["truncated"] = example[: len(example) // 2]
    words = [b'"type"', b'"properties"', b'"required"', b'"additionalProperties"', b'"items"', b'"enum"',
             b'"minimum"', b'"maximum"', b'"minLength"', b'"maxLength"', b'"maxItems"', b'"default"',
             b'"object"', b'"array"', b'"string"', b'"integer"', b'"number"', b'"boolean"', b'"null"',
             b'1e308', b'-0', b'\\u0000', b'\\ud800']
    return seeds, words, 8192


def image_manifest():
    """Images in fuzz_image_manifest.c's format: mode byte, then NUL-separated documents (0: index.json
    or manifest.json, the rest blobs), "@N" standing for document N's SHA-256."""
    oci_manifest = "application/vnd.oci.image.manifest.v1+json"
    oci_index = "application/vnd.oci.image.index.v1+json"
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip"

    def config(arch, user="1000:1000", variant=None):
        c = {"architecture": arch, "os": "linux",
             "config": {"Env": ["PATH=/usr/bin:/bin", "A=b=c"], "Entrypoint": ["/bin/sh", "-c"],
                        "Cmd": ["echo hi"], "WorkingDir": "/app", "User": user},
             "rootfs": {"type": "layers", "diff_ids": ["sha256:@9"]}}
        if variant:
            c["variant"] = variant
        return c

    def manifest(cfg, layer):
        return {"schemaVersion": 2, "mediaType": oci_manifest,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:@%d" % cfg,
                           "size": 1},
                "layers": [{"mediaType": layer_type, "digest": "sha256:@%d" % layer, "size": 1}]}

    def image(mode, docs):
        return bytes([mode]) + b"\0".join(d if isinstance(d, bytes) else json.dumps(d).encode() for d in docs)

    single = [{"schemaVersion": 2, "manifests": [{"mediaType": oci_manifest, "digest": "sha256:@1", "size": 1,
                                                  "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
              manifest(2, 3), config("amd64"), b"layer"]
    multi = [{"schemaVersion": 2, "manifests": [{"mediaType": oci_index, "digest": "sha256:@1", "size": 1,
                                                 "annotations": {"io.containerd.image.name":
                                                                 "docker.io/library/hello:latest"}}]},
             {"schemaVersion": 2, "mediaType": oci_index, "manifests": [
                 {"mediaType": oci_manifest, "digest": "sha256:@2", "platform": {"os": "linux", "architecture": "amd64"}},
                 {"mediaType": oci_manifest, "digest": "sha256:@3",
                  "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]},
             manifest(4, 6), manifest(5, 6), config("amd64", "root"), config("arm64", "nobody", "v8"), b"layer"]
    docker = [[{"Config": "blobs/sha256/@1", "RepoTags": ["hello:latest"], "Layers": ["blobs/sha256/@2"]}],
              config("amd64", "0"), b"layer"]
    seeds = {
        "oci-single": image(0, single),
        "oci-single-tag": image(8, single),
        "oci-multi-arm64": image(2, multi),
        "oci-multi-nitro": image(4, multi),
        "docker-archive": image(1, docker),
        "docker-archive-tag": image(9, docker),
        "schema1": image(0, [single[0], {"schemaVersion": 1, "mediaType":
                                         "application/vnd.docker.distribution.manifest.v1+json"}]),
    }
    words = [b'"sha256:@1"', b'"sha256:@2"', b"@3", b"\0", b'"mediaType"', b'"digest"', b'"manifests"', b'"platform"',
             b'"config"', b'"layers"', b'"Entrypoint"', b'"Cmd"', b'"Env"', b'"User"', b'"WorkingDir"', b'"diff_ids"',
             oci_index.encode(), oci_manifest.encode(), b"application/vnd.docker.distribution.manifest.list.v2+json"]
    return seeds, words, 8192


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT, compress=False):
    """A tar of (name, kind, arg) entries: kind "d" dir, "f" file (arg = content), "l" symlink
    (arg = target), "h" hard link (arg = target), "c" char device, "p" fifo."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, kind, arg in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = 0o755
            data = None
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, arg
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, arg
            elif kind == "c":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "p":
                info.type = tarfile.FIFOTYPE
            else:
                data = arg.encode()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = out.getvalue().rstrip(b"\0")  # drop the 10 KiB record padding: small seeds fuzz faster
    raw += bytes(-len(raw) % 512 + 1024)
    return gzip.compress(raw, mtime=0) if compress else raw


def layer_apply():
    """Two-layer inputs for fuzz_layer_apply.c: flags, length of the first layer, the layers.
    The lower layer has users, groups, links and devices; the upper one whiteouts, an opaque
    directory, type changes and links through symlinks."""
    lower = [("etc", "d", None), ("etc/passwd", "f", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
             ("etc/group", "f", "root:x:0:\nstaff:x:50:app\n"), ("usr", "d", None), ("usr/bin", "d", None),
             ("usr/bin/x", "f", "#!/bin/sh\n"), ("usr/bin/y", "h", "usr/bin/x"), ("bin", "l", "usr/bin"),
             ("w", "d", None), ("w/keep", "f", "k"), ("dev", "d", None), ("dev/null", "c", None),
             ("run", "d", None), ("run/fifo", "p", None), ("a/" * 40 + "deep", "f", "deep")]
    upper = [("usr/bin/.wh.x", "f", ""), ("w/.wh..wh..opq", "f", ""), ("w/new", "f", "n"),
             ("etc/passwd", "f", "root:x:0:0::/:/bin/sh\napp:x:1000:50::/:/bin/sh\n"), ("dev", "f", "now a file"),
             ("lib", "l", "../../../usr"), ("lib/escape", "f", "x"), ("bin/z", "f", "through the symlink"),
             ("usr/bin/h", "h", "usr/bin/y"), ("./usr/bin/.wh.y", "f", ""), ("loop", "l", "loop/x")]

    def two(flags, a, b):
        return bytes([flags]) + struct.pack(">H", len(a)) + a + b

    seeds = {
        "pax": two(1, tar_bytes(lower), tar_bytes(upper)),
        "gnu-gzip": two(0, tar_bytes(lower, tarfile.GNU_FORMAT, True), tar_bytes(upper, tarfile.GNU_FORMAT, True)),
        "ustar-upper-only": two(1, b"", tar_bytes(upper, tarfile.USTAR_FORMAT)),
        "lower-only": two(0, tar_bytes(lower), b""),
        "dot-dot": two(0, b"", tar_bytes([("usr", "d", None), ("./usr/../../etc/.wh.passwd", "f", "")])),
    }
    words = [b".wh.", b".wh..wh..opq", b"ustar\x00", b"ustar  \x00", b"../", b"/etc/passwd", b"\x1f\x8b\x08",
             b"path=", b"linkpath=", b"SCHILY.xattr.", b"GNU.sparse."]
    return seeds, words, 16384


TARGETS = {
    "layer_apply": layer_apply,
    "image_manifest": image_manifest,
    "kiln_json": kiln_json,
    "cpio": cpio,
    "aws_xml": aws_xml,
    "sigv4": sigv4,
}
