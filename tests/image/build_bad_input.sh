# Bad-input cases of Dockerfile builds, sourced by build.sh (uses its app, kb, pass, fail, $tag,
# $docker, $kiln and $work): a missing Dockerfile, an unknown target, a socket the user may not
# use, a large context without .dockerignore, symlinks leaving the context, and an interrupt.

app nodf '{"dockerfile": "docker/Dockerfile"}'
if kb nodf; then fail "missing Dockerfile"; else
  grep -q "no Dockerfile at $work/nodf/docker/Dockerfile" nodf/err.txt && pass "a missing Dockerfile is named" \
    || { cat nodf/err.txt; fail "missing Dockerfile message"; }; fi

app target '{"target": "nope"}'
printf 'FROM %s/base:1 AS one\nFROM one AS two\n' $tag > target/Dockerfile
if kb target; then fail "unknown target"; else
  grep -q 'target "nope" is not a stage of the Dockerfile (stages: one, two)' target/err.txt \
    && pass "an unknown target lists the stages" || { cat target/err.txt; fail "target message"; }; fi

app parse '"."'
printf 'FROM %s/base:1\nFOO bar\n' $tag > parse/Dockerfile
if kb parse; then fail "Dockerfile syntax error"; else
  grep -q "refused the build of Dockerfile: dockerfile parse error line 2: unknown instruction: FOO" parse/err.txt \
    && pass "a Dockerfile syntax error is the daemon's message with its line" || { cat parse/err.txt; fail "syntax error message"; }; fi

# A socket only root may use, and kiln run as nobody: the message names the group to join.
python3 -c "import socket,os,time,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1],0o660); s.listen(1); time.sleep(120)" "$work/root-only.sock" &
bgpid=$!
app perm '"."'
printf 'FROM %s/base:1\n' $tag > perm/Dockerfile
chmod 0777 perm; mkdir -m 0777 nobody-cache
for i in $(seq 50); do [ -S "$work/root-only.sock" ] && break; sleep 0.1; done
if command -v setpriv > /dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
  if setpriv --reuid=65534 --regid=65534 --clear-groups env DOCKER_HOST=unix://$work/root-only.sock \
       KILN_CACHE_DIR=$work/nobody-cache "$kiln" -C perm build > perm/out.txt 2> perm/err.txt; then
    fail "socket not permitted"
  elif grep -q "permission denied on $work/root-only.sock" perm/err.txt && grep -q "usermod -aG root" perm/err.txt; then
    pass "a socket the user may not open names the group to join"
  else cat perm/err.txt; fail "socket permission message"; fi
else
  fail "setpriv cannot switch to nobody here: the socket permission case cannot run"
fi
kill $bgpid 2>/dev/null; wait $bgpid 2>/dev/null; bgpid=

app big '{"context_warn_mib": 1}'
printf 'FROM %s/base:1\nCMD ["/bin/sh"]\n' $tag > big/Dockerfile
head -c 2200000 /dev/zero > big/blob.bin
if kb big && grep -q "is 2.1 MiB and has no .dockerignore" big/err.txt; then
  pass "a large context without .dockerignore builds with a warning giving its size"
else cat big/err.txt; fail "large context warning"; fi
echo blob.bin > big/.dockerignore
if kb big && ! grep -q "has no .dockerignore" big/err.txt; then pass "no warning once .dockerignore exists"
else cat big/err.txt; fail "warning with .dockerignore"; fi

app link '"."'
printf 'FROM %s/base:1\nCOPY . /app\nCMD ["/bin/sh"]\n' $tag > link/Dockerfile
mkdir link/sub; ln -s ../../outside link/sub/leak
if kb link; then fail "symlink leaving the context"; else
  grep -q "the symlink sub/leak -> ../../outside points outside the build context" link/err.txt \
    && pass "a relative symlink leaving the context is refused" || { cat link/err.txt; fail "symlink message"; }; fi
rm link/sub/leak; ln -s /etc/passwd link/abs
if kb link; then fail "absolute symlink"; else
  grep -q "the symlink abs -> /etc/passwd points outside" link/err.txt \
    && pass "an absolute symlink is refused" || { cat link/err.txt; fail "absolute symlink message"; }; fi
echo abs > link/.dockerignore; ln -s ../sub link/sub/inside
if kb link; then pass "an ignored symlink and one staying inside are fine"; else cat link/err.txt; fail "ignored symlink"; fi

# Interrupt during a RUN: kiln exits 130 and the daemon's build stops (its container goes away).
app intr '"."'
printf 'FROM %s/base:1\nRUN sleep 47\n' $tag > intr/Dockerfile
"$kiln" -C intr build > intr/out.txt 2> intr/err.txt &
kpid=$!
for i in $(seq 600); do grep -q "Running in" intr/err.txt && break; sleep 0.1; done
kill -INT $kpid
wait $kpid; rc=$?
gone=0
for i in $(seq 200); do
  if ! new_containers > /dev/null && ! pgrep -x -f "sleep 47" > /dev/null; then gone=1; break; fi
  sleep 0.1
done
if [ $rc -eq 130 ] && grep -q "interrupted" intr/err.txt && [ $gone -eq 1 ] && [ ! -e intr/app.eif ]; then
  pass "an interrupt exits 130 and cancels the daemon's build"
else echo "rc=$rc gone=$gone"; tail -3 intr/err.txt; fail "interrupt"; fi

# Interrupt while the context tar is made (a large sparse file keeps it busy): exit 130 at once.
app slowctx '"."'
printf 'FROM %s/base:1\nCMD ["/bin/sh"]\n' $tag > slowctx/Dockerfile
truncate -s 64G slowctx/huge.img
"$kiln" -C slowctx build > slowctx/out.txt 2> slowctx/err.txt &
kpid=$!
sleep 1
t0=$(date +%s)
kill -INT $kpid
wait $kpid; rc=$?
if [ $rc -eq 130 ] && [ $(($(date +%s) - t0)) -le 5 ] && grep -q "interrupted" slowctx/err.txt; then
  pass "an interrupt while the build context is made exits 130 promptly"
else echo "rc=$rc"; tail -3 slowctx/err.txt; fail "interrupt during the context"; fi
rm -f slowctx/huge.img
