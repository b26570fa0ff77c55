# Shared by Benchmarks/hostile/run.sh and soak.sh: builds the client, starts one private dbus-daemon (a socket in
# a temporary folder, large message limits) and berthd with the four shipped plugins, temporary XDG folders and
# HOME; stops everything on exit. Nothing touches the host's buses or $HOME.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/.build/release}
TIMEOUT=${TIMEOUT:-30}
if [ "${1:-}" = --build ]; then (cd "$root" && swift build -c release); fi
for lib in berthd libServicesPlugin.so libPickupPlugin.so libInstancesPlugin.so libRecorderPlugin.so; do
    [ -e "$BUILD_DIR/$lib" ] || { echo "$BUILD_DIR/$lib is missing: run with --build (swift build -c release)" >&2; exit 1; }
done
out=$root/Benchmarks/out/hostile   # git-ignored
mkdir -p "$out"
cc -O2 -Wall -Wextra -o "$out/hostile-bench" "$here/hostile-bench.c" $(pkg-config --cflags --libs libsystemd) -lm
bench=$out/hostile-bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hostile-bench-XXXXXX")
pids=()
# setpriv --pdeathsig: even a SIGKILL of this script leaves no child behind.
# Called as `spawn CMD... &`: exec keeps $! the program's own pid (not a subshell's).
spawn() { if command -v setpriv > /dev/null; then exec setpriv --pdeathsig TERM -- "$@"; else exec "$@"; fi; }
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$tmp/config/berth" "$tmp/state" "$tmp/run" "$tmp/plugins"
for lib in libServicesPlugin.so libPickupPlugin.so libInstancesPlugin.so libRecorderPlugin.so; do
    ln -s "$BUILD_DIR/$lib" "$tmp/plugins/"
done
ports=$((21000 + RANDOM % 50 * 100))
cat > "$tmp/config/berth/berth.yaml" <<YAML
job_retention: 100ms
services:
  units:
    logger: { exec: [sleep, "100000"] }
    idle: { exec: [sleep, "100000"] }
instances:
  ports: $ports-$((ports + 99))
pickup:
  max_upload_bytes: ${UPLOAD_CAP:-48M}    # above the default 16M, so that the 32 MiB Deploy is taken, not refused
recorder:
  device: bench
  alsa_config: 'pcm.bench { type null }'
  min_free_bytes: 0
YAML
cat > "$tmp/bus.conf" <<CONF
<busconfig><type>session</type><listen>unix:path=$tmp/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
<limit name="max_incoming_bytes">1000000000</limit><limit name="max_outgoing_bytes">1000000000</limit><limit name="max_message_size">1000000000</limit></busconfig>
CONF
spawn dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile & pids+=($!)
ADDR="unix:path=$tmp/bus"
for _ in $(seq 100); do [ -S "$tmp/bus" ] && break; sleep 0.05; done
export XDG_CONFIG_HOME=$tmp/config XDG_STATE_HOME=$tmp/state XDG_RUNTIME_DIR=$tmp/run HOME=$tmp DBUS_SESSION_BUS_ADDRESS=$ADDR
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/no-system-bus
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID LISTEN_FDS LISTEN_PID
spawn "$BUILD_DIR/berthd" --address "$ADDR" --plugin-dir "$tmp/plugins" > "$tmp/berthd.log" 2>&1 & pids+=($!)
berthd=$!
for _ in $(seq 400); do busctl --address="$ADDR" get-property org.berth.Berth1 /org/berth/Berth1/pickup org.berth.Berth1.Pickup Paused >/dev/null 2>&1 && break; sleep 0.05; done
busctl --address="$ADDR" get-property org.berth.Berth1 /org/berth/Berth1/pickup org.berth.Berth1.Pickup Paused >/dev/null \
    || { echo "berthd did not come up:" >&2; tail -20 "$tmp/berthd.log" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$berthd/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$berthd/status" 2>/dev/null || echo 0; }
alive() { kill -0 "$berthd" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$berthd/stat" 2>/dev/null)" != Z ]; }
header() {
    echo "# $1 $(date -u +%FT%TZ) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -r)"
    echo "# berthd from $BUILD_DIR ($(stat -c %y "$BUILD_DIR/berthd" | cut -d. -f1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
