#!/bin/bash
# Fetches the pinned .debs (every toolchain's share/toolchain/x86_64-*.pins and the kernel's
# share/toolchain/kernel.pins) with apt-get download into build/toolchain-debs, checked against
# their pinned sha256: the toolchain tests serve them from a local HTTP mirror on 127.0.0.1 and use
# them as an offline /toolchain/debs directory; every other test has it as its download directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest="${KILN_TOOLCHAIN_DEBS:-$top/build/toolchain-debs}"
pins_files=("$top"/share/toolchain/x86_64-*.pins "$top/share/toolchain/kernel.pins")
mkdir -p "$dest"
cd "$dest"
want=()
while read -r package version path _size sha; do
  case "$package" in '' | '#'*) continue ;; esac
  file=${path##*/}
  if [ -f "$file" ] && echo "$sha  $file" | sha256sum -c --quiet 2>/dev/null; then
    continue
  fi
  # The pool file's architecture (amd64, or all for the -cross target packages), so apt picks
  # exactly the pinned file and never a foreign-arch variant.
  arch=${file%.deb}
  arch=${arch##*_}
  want+=("$package:$arch=$version")
done < <(sort -u "${pins_files[@]}")
if [ ${#want[@]} -gt 0 ]; then
  apt-get -q download "${want[@]}" >/dev/null
fi
# apt-get names files with the epoch's ':' as %3a; the archive's pool names have no epoch.
for f in *%3a*.deb; do
  [ -e "$f" ] && mv "$f" "${f/[0-9]%3a/}"
done
while read -r package version path _size sha; do
  case "$package" in '' | '#'*) continue ;; esac
  echo "$sha  ${path##*/}" | sha256sum -c --quiet
done < <(sort -u "${pins_files[@]}")
echo "pinned toolchain .debs in $dest"
