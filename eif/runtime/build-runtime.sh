#!/bin/sh
# Build kiln-agent and kiln-host with fixed flags so both are byte-reproducible: static, no build
# id, no source paths, stripped (as kiln-init). kiln-host links c-ares statically for DNS.
# Usage: build-runtime.sh CC SOURCE_DIR AGENT_OUTPUT HOST_OUTPUT (HOST_OUTPUT "-": agent only, for
# a cross compiler without c-ares). CC may be a cross compiler (aarch64-linux-gnu-gcc).
set -eu
cc=$1
src=$(cd "$2" && pwd)
agent=$3
host=$4
core="rt_loop.c rt_pair.c rt_endpoint.c rt_egress.c rt_http.c rt_proxyv2.c rt_proxy.c rt_ingress.c
rt_config.c rt_console.c rt_logs.c"
flags="-std=c11 -Os -static -s -Wall -Wextra -Werror -ffile-prefix-map=$src=.
-fno-ident -Wl,--build-id=none"
cd "$src"
# shellcheck disable=SC2086
"$cc" $flags -o "$agent.tmp" agent.c $core rt_nsm.c rt_attest_server.c
if [ "$host" = - ]; then
  mv "$agent.tmp" "$agent"
  exit 0
fi
# glibc warns that c-ares' static getservbyname needs the shared NSS at run time; kiln-host never
# asks for a service by name, so the warnings are shown only when the link fails.
log=$(mktemp)
# shellcheck disable=SC2086
if ! "$cc" $flags -o "$host.tmp" host.c $core -l:libcares.a 2>"$log"; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
mv "$agent.tmp" "$agent"
mv "$host.tmp" "$host"
