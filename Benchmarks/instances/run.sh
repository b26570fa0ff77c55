#!/usr/bin/env bash
# Instances benchmarks: New+Start latency, and a rolling deploy through a real nginx under HTTP load.
#
#   Benchmarks/instances/run.sh
#
#   SCRATCH=DIR   the build folder (default .build); the debug build with tests is made first
#   BUILD=DIR     where berthd, libBerthKit.so and libInstancesPlugin.so are (default $SCRATCH/debug)
#   ROUNDS=300    New+Start rounds
#
# New+Start: new-start.c (C, sd-bus, one connection) against berthd with the instances plugin on a private
# dbus-daemon, in temporary XDG folders: New (timed to its reply), the `server` link put in place (not timed),
# Start (timed to the job's JobRemoved "done"), MainPID checked. Prints p50/p90 of each figure as BENCH lines.
# The rolling deploy is still measured by its test (BERTH_BENCH=1), which prints its BENCH line.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
cd "$root"
SCRATCH=${SCRATCH:-.build}
ROUNDS=${ROUNDS:-300}
swift build --build-tests --scratch-path "$SCRATCH" >/dev/null
BUILD=${BUILD:-$root/$SCRATCH/debug}

work=$(mktemp -d /tmp/berth-inst-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -Wall -I "$here/../c" -o "$work/new-start" "$here/new-start.c" $(pkg-config --cflags --libs libsystemd)

dbus-daemon --session --address="unix:path=$work/bus" --nofork --nopidfile --print-address=3 3>"$work/address" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/address ]] && break; sleep 0.05; done
address=$(head -1 "$work/address")
mkdir -p "$work/config/berth" "$work/state" "$work/run" "$work/plugins"
ln -s "$BUILD/libInstancesPlugin.so" "$work/plugins/"
base=$((20000 + RANDOM % 120 * 100))
printf 'instances:\n  ports: %d-%d\n  stop_timeout: 2s\n' "$base" $((base + 99)) >"$work/config/berth/berth.yaml"
printf '#!/bin/sh\nexec sleep 1000\n' >"$work/server"
chmod 755 "$work/server"
env -u NOTIFY_SOCKET HOME="$work" XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state" \
    XDG_RUNTIME_DIR="$work/run" "$BUILD/berthd" --address "$address" --plugin-dir "$work/plugins" \
    2>"$work/berthd.log" &
berthd=$!
pids+=($berthd)
for _ in $(seq 200); do busctl --address="$address" status org.berth.Berth1 >/dev/null 2>&1 && break; sleep 0.05; done

"$work/new-start" "$address" "$work/state/berth/instances" "$work/server" "$ROUNDS" >"$work/results" \
    || { cat "$work/berthd.log" >&2; exit 1; }
kill -TERM "$berthd"; wait "$berthd" || true
python3 - "$work/results" "$ROUNDS" <<'PY'
import sys
rows = [line.split()[1:] for line in open(sys.argv[1])]
def p(values, q): return sorted(values)[min(len(values) - 1, int(len(values) * q))] / 1000
new, reply, total = ([int(r[i]) for r in rows] for i in range(3))
print(f"BENCH new_p50_ms={p(new, 0.5):.2f} start_reply_p50_ms={p(reply, 0.5):.2f} new_start_p50_ms={p(total, 0.5):.2f} "
      f"new_start_p90_ms={p(total, 0.9):.2f} rounds={sys.argv[2]}")
PY

BERTH_BENCH=1 "$SCRATCH/debug/berthPackageTests.xctest" --testing-library swift-testing \
    --filter rollingDeployThroughNginxLosesNoRequest 2>&1 | grep -E "^BENCH|✘" || true
