#!/bin/bash
# Upload benchmark (not a test): one file (1 GiB by default) to the same loopback S3 servers (moto's
# server and the npm s3rver), `kiln upload` against `aws s3 cp`, with the same part size and
# parallelism and then each tool's best settings. Prints wall-time ratios, client CPU seconds
# (user+sys) per GiB, peak RSS, and a kill-at-50%-and-resume run counting re-sent parts at our fault
# proxy. Usage: bench/s3-bench.sh [KILN] [SIZE_MIB]     (needs awscli, GNU time, node, moto)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$top/build/release/bin/kiln}
size_mib=${2:-1024}
[ -x "$kiln" ] || { echo "no kiln binary at $kiln: build first (cmake --build build/release)" >&2; exit 1; }
aws=$(command -v /usr/bin/aws || command -v aws || true)
[ -n "$aws" ] || { echo "the AWS CLI is needed (apt-get install awscli)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 1; }
modules="$top/build/node/node_modules"
[ -e "$modules/@20minutes/s3rver" ] || bash "$top/tests/deps/s3.sh"

work=$(mktemp -d /tmp/kiln-s3-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

moto_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
s3rver_port=$(free_port)
node "$top/tests/s3/s3rver.js" "$modules" -d "$work/s3rver" -a 127.0.0.1 -p "$s3rver_port" --silent \
  >"$work/s3rver.log" 2>&1 &
pids+=($!)
proxy_port=$(free_port)
python3 "$top/tests/lib/faultproxy.py" --listen-port "$proxy_port" --upstream "http://127.0.0.1:$moto_port" \
  >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_port "$moto_port" && wait_port "$s3rver_port" && wait_port "$proxy_port"

file="$work/upload.bin"
head -c "$((size_mib * 1048576))" /dev/urandom >"$file"
gib=$(python3 -c "print($size_mib / 1024)")

export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export KILN_CACHE_DIR="$work/cache" HOME="$work"
unset AWS_PROFILE AWS_ENDPOINT_URL_S3 || true

# measure NAME CMD...: runs CMD under GNU time; records wall, cpu (user+sys) and max RSS (KiB)
declare -A wall cpu rss
measure() {
  local name=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    echo "$name failed:" >&2
    tail -5 "$work/$name.err" >&2
    return 1
  }
  read -r w u s m <"$work/time"
  wall[$name]=$w
  cpu[$name]=$(python3 -c "print(round($u + $s, 2))")
  rss[$name]=$m
}

aws_config() { # PART_MIB CONCURRENCY -> a config file for `aws s3 cp`
  printf '[default]\ns3 =\n  multipart_chunksize = %sMB\n  multipart_threshold = %sMB\n  max_concurrent_requests = %s\n' \
    "$1" "$1" "$2" >"$work/aws-$1-$2.config"
  echo "$work/aws-$1-$2.config"
}

report() { # server label kiln_run aws_run
  python3 - "$@" "${wall[$3]}" "${cpu[$3]}" "${rss[$3]}" "${wall[$4]}" "${cpu[$4]}" "${rss[$4]}" "$gib" <<'EOF'
import sys
server, label, _, _, kw, kc, kr, aw, ac, ar, gib = sys.argv[1:]
kw, kc, aw, ac, gib = map(float, (kw, kc, aw, ac, gib))
print("%-7s %-22s kiln %6.2f s %5.2f CPU-s/GiB %5.1f MiB RSS | aws %6.2f s %5.2f CPU-s/GiB %5.1f MiB RSS"
      " | wall ratio kiln/aws %.2f, CPU ratio %.2f" % (
          server, label, kw, kc / gib, int(kr) / 1024, aw, ac / gib, int(ar) / 1024, kw / aw, kc / ac))
EOF
}

for server in moto s3rver; do
  if [ "$server" = moto ]; then
    endpoint="http://127.0.0.1:$moto_port"; export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  else
    endpoint="http://127.0.0.1:$s3rver_port"; export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  fi
  bucket="bench-$server"
  "$aws" --endpoint-url "$endpoint" s3api create-bucket --bucket "$bucket" >/dev/null
  # same settings: 16 MiB parts, 8 in flight
  AWS_CONFIG_FILE=$(aws_config 16 8) measure "aws-same-$server" \
    "$aws" --endpoint-url "$endpoint" s3 cp --only-show-errors "$file" "s3://$bucket/aws-same"
  AWS_ENDPOINT_URL="$endpoint" measure "kiln-same-$server" \
    "$kiln" upload "$file" "s3://$bucket/kiln-same" --part-size 16 --parallel 8 --json
  # each tool's best settings on this machine (chosen by trying a few)
  AWS_CONFIG_FILE=$(aws_config 64 16) measure "aws-best-$server" \
    "$aws" --endpoint-url "$endpoint" s3 cp --only-show-errors "$file" "s3://$bucket/aws-best"
  AWS_ENDPOINT_URL="$endpoint" measure "kiln-best-$server" \
    "$kiln" upload "$file" "s3://$bucket/kiln-best" --part-size 64 --parallel 16 --json
  report "$server" "same (16 MiB x 8)" "kiln-same-$server" "aws-same-$server"
  report "$server" "best (64 MiB x 16)" "kiln-best-$server" "aws-best-$server"
done

# Kill at 50% and resume (moto behind the proxy, which counts the parts each run sends).
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
proxy="http://127.0.0.1:$proxy_port"
stats() { curl -s "$proxy/__faultproxy/stats"; }
"$aws" --endpoint-url "$proxy" s3api create-bucket --bucket bench-resume >/dev/null
curl -s -X POST -d '{"reset_stats": true}' "$proxy/__faultproxy/config" >/dev/null
AWS_ENDPOINT_URL="$proxy" "$kiln" upload "$file" s3://bench-resume/r --part-size 16 --parallel 4 \
  >/dev/null 2>&1 &
upload_pid=$!
half=$((size_mib * 1048576 / 2))
while kill -0 "$upload_pid" 2>/dev/null; do
  sent=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])')
  [ "$sent" -ge "$half" ] && break
  sleep 0.05
done
kill -9 "$upload_pid" 2>/dev/null || true
wait "$upload_pid" 2>/dev/null || true
# parts the proxy still holds from the killed run reach the server before we count
for _ in $(seq 200); do
  [ "$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])')" = 0 ] && break
  sleep 0.05
done
first=$(stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(1 for e in s["log"] if e["op"]=="UploadPart" and e["status"]==200))')
curl -s -X POST -d '{"reset_stats": true}' "$proxy/__faultproxy/config" >/dev/null
AWS_ENDPOINT_URL="$proxy" "$kiln" upload "$file" s3://bench-resume/r --part-size 16 --parallel 4 \
  --json >"$work/resume.json"
second=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["operations"].get("UploadPart",0))')
parts=$(python3 -c "import json; print(json.load(open('$work/resume.json'))['parts'])")
reused=$(python3 -c "import json; print(json.load(open('$work/resume.json'))['parts_reused'])")
echo "resume: killed at 50%: $first of $parts parts were stored, kiln reused $reused and sent $second" \
  "($((second - (parts - first))) part(s) re-sent beyond the $((parts - first)) missing ones)"
