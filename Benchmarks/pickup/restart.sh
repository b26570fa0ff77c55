#!/usr/bin/env bash
# pickup at a restart (issue 20): what the start rescan costs per file when nothing changed, and that it deploys
# nothing again — neither the N deployed files nor the N files that failed (files the config target cannot take).
# Baseline in the same run: the same daemon restarting over empty pickup folders. Everything runs on one private
# dbus-daemon with temporary XDG folders; nothing touches the host's buses or $HOME.
#
#   Benchmarks/pickup/restart.sh        BUILD_DIR=.build/debug N=2000 RUNS=7 (env overrides)
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/.build/debug}
N=${N:-2000}
RUNS=${RUNS:-7}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pickup-restart-XXXXXX")
pids=()
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM HUP

cat > "$tmp/bus.conf" <<CONF
<busconfig><type>session</type><listen>unix:path=$tmp/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
CONF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile & pids+=($!)
ADDR="unix:path=$tmp/bus"
for _ in $(seq 100); do [ -S "$tmp/bus" ] && break; sleep 0.05; done
export DBUS_SESSION_BUS_ADDRESS=$ADDR HOME=$tmp
unset NOTIFY_SOCKET

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# start STATE: starts berthd over that state folder; prints microseconds from exec to the bus name.
start() {
    local state=$1 t0 t1
    mkdir -p "$state/config/berth" "$state/state" "$state/run" "$state/plugins"
    ln -sf "$BUILD_DIR/libPickupPlugin.so" "$state/plugins/"
    t0=$(now_us)
    XDG_CONFIG_HOME=$state/config XDG_STATE_HOME=$state/state XDG_RUNTIME_DIR=$state/run \
        "$BUILD_DIR/berthd" --address "$ADDR" --plugin-dir "$state/plugins" >> "$state/berthd.log" 2>&1 &
    daemon=$!
    gdbus wait --session --timeout 120 org.berth.Berth1
    t1=$(now_us)
    echo $(( t1 - t0 ))
}
stop() { kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=""; }
rows() { sqlite3 "$1/state/berth/pickup/pickup.sqlite" "SELECT COUNT(*) FROM deployments"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

full=$tmp/full
empty=$tmp/empty
start "$full" > /dev/null
files=$full/state/berth/pickup/files
config=$full/state/berth/pickup/config
for i in $(seq -w 1 "$N"); do
    echo "file $i" > "$files/f-$i.txt"
    echo "note $i" > "$config/n-$i.txt"   # the config target takes *.yaml, *.yml, *.json: each fails, saying why
done
for _ in $(seq 600); do [ "$(rows "$full")" -ge $((2 * N)) ] && break; sleep 0.1; done
first=$(rows "$full")
stop
start "$empty" > /dev/null && stop

echo "# pickup restart $(date -u +%FT%TZ) on $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), berthd from $BUILD_DIR"
echo "log rows after the first start: $first (N=$N deployed + N failed)"
for _ in $(seq "$RUNS"); do start "$full"; stop; done > "$tmp/full.us"
for _ in $(seq "$RUNS"); do start "$empty"; stop; done > "$tmp/empty.us"
after=$(rows "$full")
f=$(median < "$tmp/full.us")
e=$(median < "$tmp/empty.us")
echo "log rows after $RUNS restarts: $after (nothing deployed or failed again: $([ "$after" = "$first" ] && echo yes || echo NO))"
awk -v f="$f" -v e="$e" -v n="$((2 * N))" 'BEGIN {
    printf "exec -> bus name, median of runs: %d files %.1f ms, empty folders (baseline) %.1f ms, ratio %.2f\n", n, f / 1000, e / 1000, f / e
    printf "start rescan per unchanged file: %.1f us\n", (f - e) / n
}'
