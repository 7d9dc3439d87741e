#!/bin/bash
# Bounded memory: an image with 150k entries and a 512 MiB file, as a gzip layer (spooled) and as
# an uncompressed one (read in place), must be turned into a rootfs with peak RSS under 64 MiB.
# Usage: memory.sh IMAGE_DRIVER
set -euo pipefail
driver=$1
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time (package time)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-image-mem.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 - <<'PY'
import gzip, hashlib, io, json, os, tarfile

def layer(path, compress):
    raw = open(path + ".tar", "wb")
    tf = tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT)
    def add(name, data=b"", size=None, kind=tarfile.REGTYPE, mode=0o644):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = kind, mode
        if kind == tarfile.REGTYPE:
            ti.size = len(data) if size is None else size
        tf.addfile(ti, io.BytesIO(data) if size is None else ZeroReader(size))
    class ZeroReader:
        def __init__(self, n): self.n = n
        def read(self, k=-1):
            k = self.n if k < 0 else min(k, self.n)
            self.n -= k
            return bytes(k)
    add("bin", kind=tarfile.DIRTYPE, mode=0o755)
    add("bin/app", b"#!/bin/sh\n", mode=0o755)
    add("big", size=512 << 20)
    for d in range(150):
        add("many/d%03d" % d, kind=tarfile.DIRTYPE, mode=0o755)
        for f in range(1000):
            add("many/d%03d/entry-with-a-longish-name-%04d" % (d, f), b"x")
    tf.close()
    raw.close()
    if compress:
        with open(path + ".tar", "rb") as src, gzip.open(path + ".gz", "wb", compresslevel=1) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.unlink(path + ".tar")
        return path + ".gz", "application/vnd.oci.image.layer.v1.tar+gzip"
    return path + ".tar", "application/vnd.oci.image.layer.v1.tar"

def blob(d, data_or_path):
    os.makedirs(d + "/blobs/sha256", exist_ok=True)
    if isinstance(data_or_path, bytes):
        h = hashlib.sha256(data_or_path).hexdigest()
        open("%s/blobs/sha256/%s" % (d, h), "wb").write(data_or_path)
        return "sha256:" + h, len(data_or_path)
    h = hashlib.sha256()
    with open(data_or_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    size = os.path.getsize(data_or_path)
    os.rename(data_or_path, "%s/blobs/sha256/%s" % (d, h.hexdigest()))
    return "sha256:" + h.hexdigest(), size

for name, compress in (("gz", True), ("plain", False)):
    d = "oci-" + name
    lpath, mt = layer(name, compress)
    ldig, lsize = blob(d, lpath)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/app"]},
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cdig, csize = blob(d, cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
                      "layers": [{"mediaType": mt, "digest": ldig, "size": lsize}]}).encode()
    mdig, msize = blob(d, man)
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": mdig, "size": msize}]}, open(d + "/index.json", "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(d + "/oci-layout", "w"))
PY
fails=0
for kind in gz plain; do
  /usr/bin/time -v -o time.txt "$driver" oci:oci-$kind out.cpio > out.txt 2> err.txt || { cat err.txt; fails=$((fails + 1)); continue; }
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.txt)
  files=$(grep files= out.txt | cut -d= -f2)
  if [ "$rss" -lt $((64 * 1024)) ] && [ "$files" -gt 150000 ]; then
    echo "ok - $kind layer: $files entries, $(stat -c %s out.cpio) bytes, peak RSS $((rss / 1024)) MiB"
  else
    echo "FAIL - $kind layer: $files entries, peak RSS $((rss / 1024)) MiB (limit 64)"; fails=$((fails + 1))
  fi
  rm -f out.cpio
done
echo "$fails failure(s)"
[ $fails -eq 0 ]
