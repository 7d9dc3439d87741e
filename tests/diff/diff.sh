#!/bin/bash
# kiln diff on EIFs made here with `kiln eif-build` from ramdisks GNU cpio writes: every kind of
# path difference (content, mode, owner, link target, type, only on one side) is named once and
# identical paths are not; the first differing section is named (kernel vs ramdisk); --max-paths
# caps the list but not the count; unsorted cpio input works; bad input is refused.
# Usage: diff.sh KILN
set -uo pipefail
kiln=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-diff.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }

# tree DIR VARIANT: the same files, with VARIANT b changing one attribute per path
tree() {
  mkdir -p "$1/etc" "$1/bin" "$1/var"
  echo same > "$1/etc/same"
  echo "content $2" > "$1/etc/content"
  echo mode > "$1/etc/mode"; chmod 0644 "$1/etc/mode"
  echo owner > "$1/etc/owner"
  ln -s "target-$2" "$1/bin/link"
  if [ "$2" = a ]; then echo file > "$1/var/kind"; echo only > "$1/etc/only-a"
  else mkdir "$1/var/kind"; echo only > "$1/etc/only-b"; chmod 0755 "$1/etc/mode"; chown 1000:1000 "$1/etc/owner"; fi
}
tree ta a
tree tb b
# the order find gives (not sorted): kiln diff must not depend on the archive's order
(cd ta && find . | cpio -o -H newc --quiet > ../a.cpio)
(cd tb && find . | sort -r | cpio -o -H newc --quiet > ../b.cpio)
mkdir boot; echo init > boot/init; (cd boot && find . | cpio -o -H newc --quiet > ../boot.cpio)
head -c 4096 /dev/urandom > kernel
cp kernel kernel2; echo x >> kernel2
eif() { "$kiln" eif-build --kernel "$1" --ramdisk boot.cpio --ramdisk "$2" --output "$3" > /dev/null 2> err.txt || { cat err.txt; fail "eif-build $3"; }; }
eif kernel a.cpio a.eif
eif kernel b.cpio b.eif
eif kernel2 b.cpio k.eif

"$kiln" diff a.eif b.eif --json > d.json; rc=$?
if [ $rc -eq 1 ] && python3 - d.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = {"bin/link": ["link target"], "etc/content": ["content"], "etc/mode": ["mode"],
        "etc/owner": ["owner"], "var/kind": ["type"], "etc/only-a": ["only in A"],
        "etc/only-b": ["only in B"]}
rd = d["ramdisks"]
got = {p["path"]: p["differences"] for p in rd[0]["paths"]} if len(rd) == 1 else {}
ok = (got == want and d["first_difference"]["name"] == "application ramdisk"
      and d["first_difference"]["section"] == rd[0]["section"] == len(d["sections"]) - 1
      and rd[0]["differing_paths"] == 7 and [s["same"] for s in d["sections"]][:3] == [True, True, True])
if not ok:
    print(json.dumps(d, indent=1)[:3000])
owner = [p for p in rd[0]["paths"] if p["path"] == "etc/owner"][0] if rd else {}
ok = ok and owner["a"]["uid"] == 0 and owner["b"]["uid"] == 1000 and owner["b"]["gid"] == 1000
sys.exit(0 if ok else 1)
PY
then pass "every kind of path difference is named once, identical paths are not (exit 1)"
else fail "path differences"; fi

"$kiln" diff a.eif b.eif > d.txt
grep -Eq "^first difference: section [0-9]+ \(application ramdisk\)" d.txt && grep -Eq "^application ramdisk \(section [0-9]+\): 7 paths differ" d.txt \
  && grep -q "^  etc/mode: mode" d.txt && ! grep -q "etc/same" d.txt && pass "text output names the section and paths" \
  || { cat d.txt; fail "text output"; }

"$kiln" diff a.eif k.eif --json > k.json
python3 -c "import json,sys; d=json.load(open('k.json')); sys.exit(0 if d['first_difference']=={'section':0,'name':'kernel'} and len(d['ramdisks'])==1 else 1)" \
  && pass "a different kernel is the first difference (section 0)" || { cat k.json | head -20; fail "kernel first"; }

"$kiln" diff a.eif b.eif --max-paths 2 --json > m.json
python3 -c "import json,sys; r=json.load(open('m.json'))['ramdisks'][0]; sys.exit(0 if len(r['paths'])==2 and r['differing_paths']==7 else 1)" \
  && pass "--max-paths caps the list, not the count" || fail "--max-paths"

cp a.eif a2.eif
"$kiln" diff a.eif a2.eif > same.txt; rc=$?
[ $rc -eq 0 ] && grep -q "are identical" same.txt && pass "identical files: exit 0" || fail "identical"

head -c 1000 a.eif > cut.eif
"$kiln" diff a.eif cut.eif > /dev/null 2> cut.txt; rc=$?
[ $rc -eq 1 ] && grep -q "cut.eif" cut.txt && pass "a truncated EIF is an error naming it" || { cat cut.txt; fail "truncated"; }
"$kiln" diff a.eif missing.eif > /dev/null 2> miss.txt; rc=$?
[ $rc -eq 1 ] && grep -q "missing.eif" miss.txt && pass "a missing file is named" || { cat miss.txt; fail "missing"; }
"$kiln" diff a.eif b.eif --max-paths 0 > /dev/null 2>&1; [ $? -eq 2 ] && pass "--max-paths 0 is a usage error" || fail "max-paths 0"
"$kiln" diff --help | grep -q "Usage: kiln diff" && pass "--help teaches" || fail "help"

echo "$fails failure(s)"
[ $fails -eq 0 ]
