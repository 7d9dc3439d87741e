#!/bin/bash
# Integration test of Dockerfile builds ("image": {"build": ...}) and `kiln diff` against a real
# dockerd (daemon_front.py: no bridge, no iptables, no network): base images come from
# `docker import` of a busybox tree this script makes, the kernel from a blobs directory it makes.
# Checks: kiln build makes the EIF and its rootfs equals `docker build` + docker-daemon: of the
# same Dockerfile; .dockerignore sends the same files as `docker build`; the second build is a
# cache hit without the daemon; a failing RUN names its Dockerfile line and leaves nothing; two
# builds that stamp the time differ in exactly that path (kiln diff); and the bad inputs.
# Usage: build.sh KILN IMAGE_DRIVER SERVER_ENV_FILE
set -uo pipefail
kiln=$1
driver=$2
. "$3"
export DOCKER_HOST=unix://$DIR/docker.sock DOCKER_BUILDKIT=0
docker=/usr/bin/docker
[ -x $docker ] || docker=docker
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image-build.XXXXXX")
chmod 0755 "$work"
bgpid=
trap '[ -n "$bgpid" ] && kill $bgpid 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export KILN_CACHE_DIR=$work/cache
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
tag=kiln-build-test-$$
before=$($docker ps -aq | sort)
# containers created since the test started (the daemon's data root may outlive a run)
new_containers() { comm -13 <(echo "$before") <($docker ps -aq | sort) | grep .; }

# A base image with a shell and the tools the Dockerfiles use, imported without any network.
mkdir -p base/bin base/etc base/tmp
cp "$(command -v busybox)" base/bin/busybox
for t in sh date cat echo ls id mkdir sleep chown touch rm; do ln -s busybox base/bin/$t; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > base/etc/passwd
printf 'root:x:0:\n' > base/etc/group
tar -C base -cf base.tar .
$docker import base.tar $tag/base:1 > /dev/null || { echo "cannot import the base image"; exit 1; }

# A kernel blobs directory (the EIF only needs bytes; nothing boots here).
mkdir blobs
head -c 200000 /dev/urandom > blobs/bzImage
printf '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 6.12.1 Kernel Configuration\n' > blobs/bzImage.config
echo 'console=ttyS0' > blobs/cmdline
cp /bin/true blobs/init

# app DIR BUILD_JSON: kiln.json for an app built from its Dockerfile
app() {
  mkdir -p "$1"
  printf '{"name": "app", "image": {"build": %s}, "kernel": {"source": "blobs:%s/blobs"}}\n' "$2" "$work" > "$1/kiln.json"
}
kb() { local d=$1; shift; "$kiln" -C "$d" build "$@" > "$d/out.txt" 2> "$d/err.txt"; }

# ---- kiln init in a directory with a Dockerfile writes the build form
mkdir initapp && printf 'FROM %s/base:1\nCMD ["/bin/sh"]\n' $tag > initapp/Dockerfile
if "$kiln" -C initapp init > /dev/null 2>&1 && python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['image']['build']; sys.exit(0 if b['context']=='.' and b['dockerfile']=='Dockerfile' else 1)" initapp/kiln.json; then
  pass "kiln init writes \"image\": {\"build\": ...} when a Dockerfile is present"
else cat initapp/kiln.json; fail "init with a Dockerfile"; fi

# ---- the full Dockerfile: multi-stage, build arg, COPY, RUN, ENV, USER, WORKDIR, ENTRYPOINT, CMD
app full '{"context": ".", "target": "final", "args": {"GREETING": "salut"}}'
cat > full/Dockerfile <<DF
ARG BASE=$tag/base:1
FROM \$BASE AS build
ARG GREETING=hello
RUN mkdir -p /out && echo "\$GREETING from the build stage" > /out/greeting
FROM \$BASE AS final
COPY --from=build /out/greeting /etc/greeting
COPY app.sh /srv/app/app.sh
COPY data/ /srv/app/data/
RUN echo 'svc:x:1234:1234::/srv:/bin/sh' >> /etc/passwd && echo 'svc:x:1234:' >> /etc/group \\
    && mkdir -p /srv/app/state && chown 1234 /srv/app/state
ENV MODE=production LANG=C.UTF-8
USER svc
WORKDIR /srv/app
RUN touch /srv/app/state/made-by-svc
ENTRYPOINT ["/bin/sh", "/srv/app/app.sh"]
CMD ["serve"]
FROM \$BASE AS unused
RUN exit 1
DF
printf '#!/bin/sh\necho "$@"\n' > full/app.sh; chmod 0755 full/app.sh
mkdir -p full/data/sub; echo one > full/data/one; echo two > full/data/sub/two; chmod 0600 full/data/one
ln full/data/one full/data/one-hardlink; ln -s sub/two full/data/two-link
start=$(date +%s.%N)
if kb full && [ -s full/app.eif ]; then
  pass "kiln build makes the EIF from the Dockerfile ($(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
else cat full/err.txt; fail "kiln build from the Dockerfile"; fi
grep -q "Step 1[0-9]/" full/err.txt && pass "build output streams as log lines when stderr is not a TTY" \
  || { head -5 full/err.txt; fail "build output lines"; }
# the same Dockerfile through docker build + docker-daemon:
(cd full && $docker build -q --force-rm --build-arg GREETING=salut --target final -t $tag/ref:1 . > ../ref-id.txt 2> ../ref-err.txt) \
  || { cat ref-err.txt; fail "docker build of the same Dockerfile"; }
"$driver" docker-daemon:$tag/ref:1 ref.cpio > /dev/null 2> ref-driver.txt || { cat ref-driver.txt; fail "reading the docker build"; }
rootfs=$(ls "$KILN_CACHE_DIR"/*/*/rootfs.cpio 2>/dev/null | head -1)
[ -z "$rootfs" ] && rootfs=$(find "$KILN_CACHE_DIR" -name rootfs.cpio | head -1)
if [ -n "$rootfs" ] && cmp -s "$rootfs" ref.cpio; then
  pass "its rootfs has the bytes of docker build + docker-daemon: of the same Dockerfile"
else
  fail "rootfs equals docker build's"
  [ -n "$rootfs" ] && diff <(cpio -itv < "$rootfs" 2>/dev/null) <(cpio -itv < ref.cpio 2>/dev/null) | head -20
fi
if [ -n "$rootfs" ] && cpio -i --to-stdout kiln-run < "$rootfs" 2>/dev/null | grep -qx "user=1234:1234" &&
   cpio -i --to-stdout rootfs/etc/greeting < "$rootfs" 2>/dev/null | grep -qx "salut from the build stage" &&
   cpio -i --to-stdout cmd < "$rootfs" 2>/dev/null | tr '\n' ' ' | grep -q "/bin/sh /srv/app/app.sh serve"; then
  pass "build arg, multi-stage COPY, USER, ENTRYPOINT and CMD reach the rootfs"
else fail "run config from the build"; fi
if new_containers > /dev/null; then fail "containers left behind: $(new_containers | tr '\n' ' ')"; else
  pass "no intermediate containers left"; fi

# ---- second build: a cache hit that never talks to the daemon
sum1=$(sha256sum < full/app.eif)
if DOCKER_HOST=unix://$work/no-daemon.sock kb full && grep -q "image: cached" full/err.txt &&
   [ "$(sha256sum < full/app.eif)" = "$sum1" ] && ! grep -q "docker build:" full/err.txt; then
  pass "an unchanged app directory is a cache hit without any daemon call"
else cat full/err.txt; fail "second build is a cache hit"; fi
echo "# change" >> full/app.sh
if DOCKER_HOST=unix://$work/no-daemon.sock kb full; then fail "a changed context rebuilds"; else
  grep -q "daemon is not running" full/err.txt && grep -q "systemctl start docker" full/err.txt \
    && pass "a changed context rebuilds; no daemon says how to start it" || { cat full/err.txt; fail "no-daemon message"; }; fi

# ---- on a terminal the build's output is one progress line, not log lines
echo "# tty" >> full/app.sh
if script -qec "$kiln -C full build" /dev/null > tty.txt 2>&1 && grep -q "docker build step 1[0-9]/1[0-9]: " tty.txt &&
   ! grep -q "image: docker build: Step" tty.txt; then
  pass "on a TTY the build output is shown as progress"
else tr '\r' '\n' < tty.txt | tail -5; fail "TTY progress"; fi

# ---- .dockerignore: the same files reach the context as with docker build
app ign '{"context": "ctx"}'
mkdir -p ign/ctx && cd ign/ctx
mkdir -p build/keep build/drop docs/sub node_modules/x src/cache a/b/cache logs/old skipme/a/keep \
         deep/er/est
for f in a.log keep.log x.tmp src/y.tmp src/main.c build/keep/k build/drop/d build/top docs/a.md \
         docs/sub/b.md node_modules/x/m secret1 secretXY b.txt d.txt abs src/cache/c a/b/cache/c \
         'sp ace' notes.md tmpfile tmpkeep logs/old/x.log logs/important.log skipme/a/keep/k \
         skipme/top deep/er/est/f.bak deep/er/f.bak 'br[a]ck' ; do echo "$f" > "$f"; done
printf 'FROM %s/base:1\nCOPY . /ctx\nCMD ["/bin/sh"]\n' $tag > Dockerfile
cat > .dockerignore <<'DI'
# comment
*.log
!keep.log
**/*.tmp
build
!build/keep
docs/*.md
node_modules
secret?
[a-c].txt
/abs
**/cache
Dockerfile
.dockerignore
tmp*
!tmpkeep
logs/**
!logs/important.log
skipme
!skipme/*/keep
**/*.bak
br\[a\]ck
DI
cd "$work"
if kb ign && $docker build -q --force-rm -t $tag/ign:1 ign/ctx > /dev/null 2> ign-err.txt &&
   "$driver" docker-daemon:$tag/ign:1 ign-ref.cpio > /dev/null 2>&1; then
  r=$(find "$KILN_CACHE_DIR" -name rootfs.cpio -newer ign/kiln.json | head -1)
  cpio -it < "$r" 2>/dev/null | sed -n 's|^rootfs/ctx/||p' | sort > ign-list.txt
  want="build/keep/k keep.log logs/important.log notes.md src/main.c tmpkeep"
  unwanted="a.log x.tmp src/y.tmp build/drop/d docs/a.md secret1 b.txt abs src/cache/c tmpfile logs/old/x.log skipme/a/keep/k deep/er/f.bak br[a]ck"
  for f in $want; do grep -qxF "$f" ign-list.txt || fail ".dockerignore: $f should reach the context"; done
  for f in $unwanted; do ! grep -qxF "$f" ign-list.txt || fail ".dockerignore: $f should stay out"; done
  if cmp -s "$r" ign-ref.cpio; then pass ".dockerignore: the same files reach the context as with docker build"
  else fail ".dockerignore files differ from docker build's"; diff <(cpio -it < "$r" 2>/dev/null) <(cpio -it < ign-ref.cpio 2>/dev/null); fi
else cat ign/err.txt ign-err.txt; fail ".dockerignore build"; fi

# ---- a failing RUN names its line and leaves nothing
app bad '"."'
printf 'FROM %s/base:1\nENV A=1\n\nRUN echo first-line && \\\n    echo second-line && exit 3\nCMD ["x"]\n' $tag > bad/Dockerfile
if kb bad; then fail "failing RUN"; else
  if grep -q "Dockerfile:4: RUN echo first-line" bad/err.txt && grep -q "second-line" bad/err.txt &&
     grep -q "returned a non-zero code: 3" bad/err.txt && [ "$(grep -c "^kiln build:" bad/err.txt)" -eq 1 ]; then
    pass "a failing RUN is one error naming Dockerfile:4 and the step's last output lines"
  else cat bad/err.txt; fail "failing RUN message"; fi
  if [ ! -e bad/app.eif ] && ! new_containers > /dev/null; then pass "and leaves no EIF and no container"
  else fail "failing build left something"; fi
fi

# ---- two builds stamping the build time differ in exactly that path (the nonce busts caches)
app stamp '{"args": {"NONCE": "1"}}'
printf 'FROM %s/base:1\nARG NONCE\nRUN date > /built-at\nCMD ["/bin/sh"]\n' $tag > stamp/Dockerfile
kb stamp && cp stamp/app.eif first.eif || { cat stamp/err.txt; fail "stamp build 1"; }
sleep 1
sed -i 's/"NONCE": "1"/"NONCE": "2"/' stamp/kiln.json
kb stamp && cp stamp/app.eif second.eif || { cat stamp/err.txt; fail "stamp build 2"; }
"$kiln" diff first.eif second.eif > diff.txt 2> diff-err.txt; rc=$?
"$kiln" diff first.eif second.eif --json > diff.json 2>/dev/null
cat diff.txt
if [ $rc -eq 1 ] && python3 - diff.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
paths = [p["path"] for r in d["ramdisks"] for p in r["paths"]]
ok = (d["identical"] is False and d["first_difference"]["name"] == "application ramdisk"
      and paths == ["rootfs/built-at"] and d["ramdisks"][0]["paths"][0]["differences"] == ["content"])
sys.exit(0 if ok else 1)
PY
then pass "kiln diff names rootfs/built-at and nothing else"; else cat diff.txt diff-err.txt; fail "kiln diff of stamped builds"; fi
"$kiln" diff first.eif first.eif > same.txt; rc=$?
[ $rc -eq 0 ] && grep -q identical same.txt && pass "kiln diff of a file with itself: identical, exit 0" || fail "diff identical"
"$kiln" diff first.eif > /dev/null 2>&1; [ $? -eq 2 ] && pass "kiln diff with one file is a usage error" || fail "diff usage"
echo junk > junk.eif
"$kiln" diff first.eif junk.eif > /dev/null 2> junk.txt; rc=$?
[ $rc -eq 1 ] && grep -q "junk.eif" junk.txt && pass "kiln diff of a non-EIF names the file" || { cat junk.txt; fail "diff junk"; }

echo "$fails failure(s) so far"
. "$(dirname "$0")/build_bad_input.sh"
echo "$fails failure(s)"
[ $fails -eq 0 ]
