#!/bin/bash
# Integration test of docker-daemon: sources against a real dockerd (daemon_front.py): an image
# loaded from the umoci/skopeo docker-archive gives the same rootfs bytes as oci:, a FROM-scratch
# `docker import` works, and a missing socket or image is a clear error.
# Usage: daemon.sh IMAGE_DRIVER SERVER_ENV_FILE
set -euo pipefail
driver=$1
. "$2"
export DOCKER_HOST=unix://$DIR/docker.sock
docker=/usr/bin/docker
[ -x $docker ] || docker=docker
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image-daemon.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
run() { rm -f out.cpio; "$driver" "$@" out.cpio > out.txt 2> err.txt; }

mkdir -p l1/bin l1/etc
printf '#!/bin/sh\necho hi\n' > l1/bin/app; chmod 0755 l1/bin/app
echo 'x' > l1/etc/conf; ln l1/etc/conf l1/etc/conf-link; ln -s /bin/app l1/bin/abs
mkdir -p l2; echo y > l2/y
umoci init --layout oci >/dev/null
umoci new --image oci:img >/dev/null
umoci insert --image oci:img l1 / >/dev/null
umoci insert --image oci:img l2 /opt >/dev/null
umoci insert --image oci:img --whiteout /etc/conf-link >/dev/null
umoci config --image oci:img --config.entrypoint /bin/app --config.env A=1 >/dev/null
skopeo copy -q oci:oci:img docker-archive:img.tar:kiln/loaded:v1 >/dev/null
$docker load -q -i img.tar >/dev/null
"$driver" oci:oci:img ref.cpio >/dev/null 2>&1

if run docker-daemon:kiln/loaded:v1 && cmp -s out.cpio ref.cpio; then
  pass "docker-daemon: gives the same rootfs bytes as oci: for the same image"
else cat err.txt; fail "docker-daemon: same bytes as oci:"; fi

mkdir -p scratch/bin && cp l1/bin/app scratch/bin/app && tar -C scratch -cf scratch.tar .
$docker import -c 'ENTRYPOINT ["/bin/app"]' -c 'ENV GREETING=hi' scratch.tar kiln/scratch:v1 >/dev/null
if run docker-daemon:kiln/scratch:v1 && grep -qx "argv=/bin/app" out.txt; then
  pass "FROM-scratch docker import is read from the daemon"
else cat err.txt; fail "docker import image"; fi

if run docker-daemon:kiln/absent:v1; then fail "missing image"; else
  grep -q "has no image" err.txt && pass "missing image is a clear error" || { cat err.txt; fail "missing image message"; }; fi
if DOCKER_HOST=unix://$work/nope.sock run docker-daemon:kiln/loaded:v1; then fail "daemon socket missing"; else
  grep -q "cannot talk to the Docker daemon" err.txt && pass "daemon socket missing is a clear error" || { cat err.txt; fail "socket message"; }; fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
