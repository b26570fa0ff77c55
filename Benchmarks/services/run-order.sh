#!/usr/bin/env bash
# The figures of issue 19, in ONE run against release berthd with the services and pickup plugins:
#   - a chain of LEN services, each `after:` the previous, started together -> all ready (jobs done), against
#     one start of a single service measured beside it (goal: chain <= LEN x one start + 5 ms);
#   - a code drop into pickup/services/lab/ -> pickup's Deployed (the service is ready on the new release),
#     against the service's own restart -> ready measured beside it (goal: drop <= 20 ms + restart).
#
#   Benchmarks/services/run-order.sh [--build]
#
#   BUILD=DIR   release berthd, libServicesPlugin.so and libPickupPlugin.so (default .build/release)
#   ROUNDS=20 (chain rounds) STARTS=100 (single starts) DROPS=50 (code drops; as many restarts) LEN=10
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
BUILD=${BUILD:-$root/.build/release}
ROUNDS=${ROUNDS:-20} STARTS=${STARTS:-100} DROPS=${DROPS:-50} LEN=${LEN:-10}
[[ ${1:-} == --build ]] && (cd "$root" && swift build -c release)

work=$(mktemp -d /tmp/berth-order-bench-XXXXXX)
runtime=$(mktemp -d /dev/shm/berth-order-run-XXXXXX) # a tmpfs, as /run/user/UID is on a real host
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$runtime"; }
trap cleanup EXIT
cc -O2 -Wall -I "$here/../c" -o "$work/order-bench" "$here/order-bench.c" $(pkg-config --cflags --libs libsystemd)

dbus-daemon --session --address="unix:path=$work/bus" --nofork --nopidfile --print-address=3 3>"$work/address" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/address ]] && break; sleep 0.05; done
address=$(head -1 "$work/address")
mkdir -p "$work/config/berth" "$work/state" "$work/plugins"
ln -s "$BUILD/libServicesPlugin.so" "$BUILD/libPickupPlugin.so" "$work/plugins/"
{
    echo "services:"
    echo "  units:"
    echo "    solo: { exec: [sleep, \"300\"], restart: \"no\" }"
    echo "    lab: { exec: [sh, -c, 'read v < version; exec sleep 300'] }"
    echo "    c00: { exec: [sleep, \"300\"] }"
    for i in $(seq 1 $((LEN - 1))); do printf '    c%02d: { exec: [sleep, "300"], after: [c%02d] }\n' "$i" $((i - 1)); done
} >"$work/config/berth/berth.yaml"
env -u NOTIFY_SOCKET HOME="$work" XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state" XDG_RUNTIME_DIR="$runtime" \
    "$BUILD/berthd" --address "$address" --plugin-dir "$work/plugins" 2>"$work/berthd.log" &
berthd=$!
pids+=($berthd)
for _ in $(seq 200); do busctl --address="$address" status org.berth.Berth1 >/dev/null 2>&1 && break; sleep 0.05; done
code="$work/state/berth/pickup/services/lab"
for _ in $(seq 100); do [[ -d $work/state/berth/pickup/services ]] && break; sleep 0.05; done
mkdir -p "$code"

b="$work/order-bench"
{
    "$b" "$address" one "$STARTS" | sed 's/^sample/one/'
    "$b" "$address" chain "$ROUNDS" "$LEN" | sed 's/^sample/chain/'
    # The first release (lab not running yet), then lab runs on it.
    "$b" "$address" drop 1 lab "$code" >/dev/null
    busctl --address="$address" call org.berth.Berth1 /org/berth/Berth1/services org.berth.Berth1.Services Start s lab >/dev/null
    sleep 0.2
    "$b" "$address" restart "$DROPS" lab | sed 's/^sample/restart/'
    "$b" "$address" drop "$DROPS" lab "$code" | sed 's/^sample/drop/'
    # Pickup's own part, the same file into files/ (stored and published, no service).
    "$b" "$address" drop "$DROPS" files "$work/state/berth/pickup/files" | sed 's/^sample/pickup/'
} >"$work/results" || { cat "$work/berthd.log" >&2; exit 1; }
releases=$(ls "$work/state/berth/services/code/lab/releases" | wc -l)
kill -TERM "$berthd"; wait "$berthd" || true

python3 - "$work/results" "$LEN" "$releases" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    rows.setdefault(key, []).append(int(value))
length, releases = int(sys.argv[2]), sys.argv[3]
def p50(k): return statistics.median(rows[k]) / 1000
def p90(k): return sorted(rows[k])[int(len(rows[k]) * 0.9)] / 1000
one, chain, restart, drop = p50("one"), p50("chain"), p50("restart"), p50("drop")
print("| figure | measured (p50) | p90 | baseline beside it (p50) | goal | |")
print("| --- | --- | --- | --- | --- | --- |")
goal = length * one + 5
print(f"| chain of {length} (`after:` the previous) started together -> all ready, {len(rows['chain'])} rounds | {chain:.2f} ms | {p90('chain'):.2f} ms | one start {one:.2f} ms ({len(rows['one'])}) | <= {length} x {one:.2f} + 5 = {goal:.2f} ms | {'met' if chain <= goal else 'NOT met'} |")
goal = restart + 20
print(f"| code drop -> ready on the new release, {len(rows['drop'])} drops | {drop:.2f} ms | {p90('drop'):.2f} ms | restart -> ready {restart:.2f} ms ({len(rows['restart'])}) | <= 20 + {restart:.2f} = {goal:.2f} ms | {'met' if drop <= goal else 'NOT met'} |")
pickup = p50("pickup")
print(f"| the same file into pickup's files/ folder -> Deployed (pickup's own part), {len(rows['pickup'])} drops | {pickup:.2f} ms | {p90('pickup'):.2f} ms | | | |")
print(f"\ndrop overhead over the restart itself: {drop - restart:.2f} ms (p50), of which pickup's own part {pickup:.2f} ms and the release (folder, links, current) {drop - restart - pickup:.2f} ms; releases kept: {releases}")
PY
