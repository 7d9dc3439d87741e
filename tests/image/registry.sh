#!/bin/bash
# Integration test of docker:// pulls against Debian's docker-registry (through registry_front.py):
# anonymous, by digest, bearer-token auth with good/bad/missing credentials, 500s and a cut
# connection (retry + Range resume), unknown tags and a manifest list for another platform.
# Usage: registry.sh IMAGE_DRIVER SERVER_ENV_FILE
set -euo pipefail
driver=$1
. "$2"
backend=$(cat "$DIR/backend_port")
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image-reg.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
reg=127.0.0.1:$PORT

mkdir -p l1/bin
printf '#!/bin/sh\necho hi\n' > l1/bin/app; chmod 0755 l1/bin/app
head -c 300000 /dev/urandom > l1/bin/blob
umoci init --layout oci >/dev/null
umoci new --image oci:img >/dev/null
umoci insert --image oci:img l1 / >/dev/null
umoci config --image oci:img --config.entrypoint /bin/app >/dev/null
for repo in kiln/test private/test flaky/test; do
  skopeo copy -q --dest-tls-verify=false oci:oci:img docker://127.0.0.1:$backend/$repo:v1
done
"$driver" oci:oci:img ref.cpio >/dev/null 2>&1
ref=$(sha256sum < ref.cpio)
same() { [ -f out.cpio ] && [ "$(sha256sum < out.cpio)" = "$ref" ]; }

run() { rm -f out.cpio; "$driver" "$@" out.cpio > out.txt 2> err.txt; }
if run docker://$reg/kiln/test:v1 && same; then pass "anonymous pull gives the same rootfs as oci:"; else cat err.txt; fail "anonymous pull"; fi
digest=$(grep image_digest= out.txt | cut -d= -f2 || true)
if run docker://$reg/kiln/test@$digest && same; then pass "pull by digest"; else cat err.txt; fail "pull by digest"; fi
wrong=sha256:$(printf x | sha256sum | cut -d' ' -f1)
if run docker://$reg/kiln/test@$wrong; then fail "unknown digest refused"; else pass "unknown digest refused"; fi
if run docker://$reg/kiln/test:nope; then fail "404 tag"; else grep -q "not found" err.txt && pass "404 tag is a clear not-found error" || { cat err.txt; fail "404 tag message"; }; fi

mkdir -p good bad
printf '{"auths":{"%s":{"auth":"%s"}}}' "$reg" "$(printf kiln:secret | base64)" > good/config.json
printf '{"auths":{"%s":{"auth":"%s"}}}' "$reg" "$(printf kiln:wrong | base64)" > bad/config.json
if DOCKER_CONFIG=$PWD/good run docker://$reg/private/test:v1 && same; then pass "bearer token auth with credentials from DOCKER_CONFIG; blob redirects to another host get no Authorization"; else cat err.txt; fail "token auth"; fi
if DOCKER_CONFIG=$PWD/bad run docker://$reg/private/test:v1; then fail "401 with wrong credentials"; else
  grep -q "credentials" err.txt && pass "401 with wrong credentials names the credentials" || { cat err.txt; fail "wrong credentials message"; }; fi
if DOCKER_CONFIG=$PWD/none run docker://$reg/private/test:v1; then fail "no credentials refused"; else pass "no credentials refused"; fi

mkdir -p helper/bin
printf '#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = "%s" ] && printf %s "$host"\n' "$reg" \
  "'{\"ServerURL\":\"%s\",\"Username\":\"kiln\",\"Secret\":\"secret\"}'" > helper/bin/docker-credential-kilntest
chmod +x helper/bin/docker-credential-kilntest
printf '{"credHelpers":{"%s":"kilntest"}}' "$reg" > helper/config.json
if PATH=$PWD/helper/bin:$PATH DOCKER_CONFIG=$PWD/helper run docker://$reg/private/test:v1 && same; then
  pass "credentials from a docker-credential helper"; else cat err.txt; cat helper/bin/docker-credential-kilntest; fail "credential helper"; fi

if run docker://$reg/flaky/test:v1 && same; then pass "registry 500 then success, cut download resumed"; else cat err.txt; fail "flaky registry"; fi
grep -q retrying err.txt && pass "retries are logged" || fail "retries are logged"

# a manifest list that only has arm64
mdigest=$digest
msize=$(skopeo inspect --raw --tls-verify=false docker://127.0.0.1:$backend/kiln/test:v1 | wc -c)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"os":"linux","architecture":"arm64"}}]}' "$mdigest" "$msize" > index.json
curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" --data-binary @index.json \
  http://127.0.0.1:$backend/v2/kiln/test/manifests/multi >/dev/null
if run docker://$reg/kiln/test:multi; then fail "index without our platform"; else
  grep -q "linux/arm64" err.txt && pass "index for another platform only lists what is available" || { cat err.txt; fail "platform message"; }; fi
# the index says arm64 but the config says amd64: a mislabelled image is used, with a warning
if "$driver" docker://$reg/kiln/test:multi out.cpio linux/arm64 > out.txt 2> err.txt; then
  grep -q "lists this image for linux/arm64, but its config says linux/amd64" err.txt \
    && pass "a config contradicting its index entry is a warning" || { cat err.txt; fail "mislabelled warning"; }
else cat err.txt; fail "an index entry for arm64 whose config says amd64 is used"; fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
