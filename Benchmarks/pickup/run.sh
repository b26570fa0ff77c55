#!/usr/bin/env bash
# pickup benchmarks (issue 4): close -> Deployed latency over COUNT files, a 1,000-file git checkout burst, and
# the detection delay beside Zato's published behaviour. Everything runs on one private dbus-daemon with
# temporary XDG folders; nothing touches the host's buses or $HOME.
#
#   Benchmarks/pickup/run.sh            BUILD_DIR=.build/debug COUNT=200 BURST=1000 (env overrides)
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/.build/debug}
COUNT=${COUNT:-200}
BURST=${BURST:-1000}
out=$here/out
mkdir -p "$out"
cc -O2 -Wall -Wextra -pthread -o "$out/pickup-latency" "$here/pickup-latency.c" $(pkg-config --cflags --libs libsystemd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pickup-bench-XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM HUP

mkdir -p "$tmp/config/berth" "$tmp/state" "$tmp/run" "$tmp/plugins"
echo "log_level: debug" > "$tmp/config/berth/berth.yaml"   # pickup logs each batch it deploys
ln -s "$BUILD_DIR/libPickupPlugin.so" "$tmp/plugins/"
cat > "$tmp/bus.conf" <<CONF
<busconfig><type>session</type><listen>unix:path=$tmp/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
<limit name="max_incoming_bytes">1000000000</limit><limit name="max_outgoing_bytes">1000000000</limit><limit name="max_message_size">1000000000</limit></busconfig>
CONF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile & pids+=($!)
ADDR="unix:path=$tmp/bus"
for _ in $(seq 100); do [ -S "$tmp/bus" ] && break; sleep 0.05; done
export XDG_CONFIG_HOME=$tmp/config XDG_STATE_HOME=$tmp/state XDG_RUNTIME_DIR=$tmp/run HOME=$tmp DBUS_SESSION_BUS_ADDRESS=$ADDR
unset NOTIFY_SOCKET
"$BUILD_DIR/berthd" --address "$ADDR" --plugin-dir "$tmp/plugins" > "$tmp/berthd.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do busctl --address="$ADDR" status org.berth.Berth1 >/dev/null 2>&1 && break; sleep 0.05; done
for _ in $(seq 200); do [ -d "$tmp/state/berth/pickup/files" ] && break; sleep 0.05; done

echo "# pickup benchmarks $(date -u +%FT%TZ) on $(nproc) CPUs, $(uname -r), berthd from $BUILD_DIR"
"$out/pickup-latency" --address "$ADDR" latency "$tmp/state/berth/pickup/files" 20 > /dev/null   # warm-up
lat=$("$out/pickup-latency" --address "$ADDR" latency "$tmp/state/berth/pickup/files" "$COUNT")
echo "$lat"

# A git clone whose other branch adds BURST files under deploy/; the folder is added live, then checked out.
g() { git -C "$1" -c user.name=bench -c user.email=bench@example.com "${@:2}"; }
mkdir -p "$tmp/origin/deploy" "$tmp/clone"
g "$tmp/origin" init -q -b main
echo base > "$tmp/origin/deploy/base.txt"
g "$tmp/origin" add . && g "$tmp/origin" commit -q -m base
g "$tmp/origin" checkout -q -b burst
for i in $(seq -w 1 "$BURST"); do echo "file $i" > "$tmp/origin/deploy/b-$i.txt"; done
g "$tmp/origin" add . && g "$tmp/origin" commit -q -m burst
# The clone must start on main (a clone checks out the origin's current branch): the burst is the checkout below,
# not the scan AddDirectory does of what is already there.
g "$tmp/origin" checkout -q main
git clone -q "$tmp/origin" "$tmp/clone"
[ "$(ls "$tmp/clone/deploy" | wc -l)" = 1 ] || { echo "the clone should hold only deploy/base.txt" >&2; exit 1; }
busctl --address="$ADDR" call org.berth.Berth1 /org/berth/Berth1/pickup org.berth.Berth1.Pickup AddDirectory \
    'sssa{sv}' repo "$tmp/clone/deploy" files 1 recursive b true
[ -n "${MONITOR:-}" ] && { dbus-monitor --address "$ADDR" "type='signal',interface='org.berth.Berth1.Pickup'" > "$tmp/monitor.txt" 2>&1 & pids+=($!); sleep 0.5; }
before=$(grep -c "a batch of" "$tmp/berthd.log" || true)
burst=$("$out/pickup-latency" --address "$ADDR" burst "$BURST" b- -- git -C "$tmp/clone" checkout -q burst) || true
echo "$burst"
echo "checkout batches (changes in each): $(grep "a batch of" "$tmp/berthd.log" | tail -n +$((before + 1)) | sed -E 's/.*a batch of ([0-9]+) changes.*/\1/' | paste -sd, -)"
# The log's own count (the signals above travel through dbus-daemon; this is what pickup recorded).
db=$tmp/state/berth/pickup/pickup.sqlite
if command -v sqlite3 > /dev/null; then
    echo "log: $(sqlite3 "$db" "SELECT COUNT(*) || ' rows, ' || COUNT(DISTINCT name) || ' distinct names, ' || SUM(status = 'deployed') || ' deployed' FROM deployments WHERE name LIKE 'b-%'"), first to last deployment $(sqlite3 "$db" "SELECT (MAX(time_usec) - MIN(time_usec)) FROM deployments WHERE name LIKE 'b-%'") us"
fi

# Zato's published detection behaviour: 3.2 polls every 1.1 s (mean delay 0.55 s, worst 1.1 s); 4.x waits for
# the size to be stable over 3 checks 0.25 s apart (0.5 s at least) plus a 2 s debounce (2.5 s at least).
p50=$(sed -E 's/.* p50=([0-9]+).*/\1/' <<< "$lat")
p99=$(sed -E 's/.* p99=([0-9]+).*/\1/' <<< "$lat")
awk -v p50="$p50" -v p99="$p99" 'BEGIN {
    printf "zato-3.2 mean 550000 us / berth p50 %d us = %.0fx faster; worst 1100000 us / berth p99 %d us = %.0fx\n", p50, 550000 / p50, p99, 1100000 / p99
    printf "zato-4.x minimum 2500000 us / berth p50 %d us = %.0fx faster\n", p50, 2500000 / p50
}'
