"""Seed corpora and dictionaries of the libFuzzer targets, made at run time (no committed blobs).
TARGETS maps a target name to a function returning (seeds {name: bytes}, dictionary words
[bytes], max_len)."""
import struct


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


TARGETS = {
    "sigv4": sigv4,
}
