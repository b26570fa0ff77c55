#!/usr/bin/env bash
# berthctl's start-up cost against the tools people compare it with (issue 15), in one run:
#   berthctl --version  vs  systemctl --version        goal: p50 ratio <= 1.2
#   berthctl status     vs  busctl call ... Manager Ping  goal: p50 ratio <= 1.5
# Builds berthctl and berthd in release (--build), starts a private dbus-daemon and berthd (no plugins) in a temp
# folder, times RUNS fork+exec+wait of each command (exec-time.c), prints min/p50/p90/max in ms and the ratios,
# and stops everything it started on every exit path.
#   Benchmarks/berthctl/run.sh [--build] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --build ]]; then
    shift
    swift build -c release --product berthctl >/dev/null
    swift build -c release --product berthd >/dev/null
fi
runs=${1:-200}
bin=${BIN:-.build/release}
[[ -x $bin/berthctl && -x $bin/berthd ]] || { echo "build first: $0 --build" >&2; exit 1; }
out=Benchmarks/out
mkdir -p "$out"
cc -O2 -o "$out/exec-time" Benchmarks/berthctl/exec-time.c

tmp=$(mktemp -d /tmp/berth-bench-ctl-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM HUP
mkdir -p "$tmp/config/berth" "$tmp/state" "$tmp/run" "$tmp/plugins"
: > "$tmp/config/berth/berth.yaml"
cat > "$tmp/bus.conf" <<CONF
<busconfig><type>session</type><listen>unix:path=$tmp/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile & pids+=($!)
for _ in $(seq 100); do [[ -S $tmp/bus ]] && break; sleep 0.05; done
export DBUS_SESSION_BUS_ADDRESS="unix:path=$tmp/bus" DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/none"
export XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/run" HOME="$tmp"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM
"$bin/berthd" --address "$DBUS_SESSION_BUS_ADDRESS" --plugin-dir "$tmp/plugins" >"$tmp/berthd.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do
    busctl --user call org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager Ping >/dev/null 2>&1 && break
    sleep 0.05
done

row() {  # label, command...
    local label=$1; shift
    local t; t=$("$out/exec-time" "$runs" 20 "$@")
    read -r mn p50 p90 mx <<<"$t"
    awk -v l="$label" -v a="$mn" -v b="$p50" -v c="$p90" -v d="$mx" \
        'BEGIN { printf "%-34s %8.2f %8.2f %8.2f %8.2f\n", l, a / 1000, b / 1000, c / 1000, d / 1000 }' >&2
    echo "$p50"
}
echo "berthctl start-up, $runs runs each (ms): min p50 p90 max" >&2
ctl_version=$(row "berthctl --version" "$bin/berthctl" --version)
sys_version=$(row "systemctl --version" systemctl --version)
ctl_status=$(row "berthctl status" "$bin/berthctl" status)
busctl_ping=$(row "busctl --user call ... Ping" busctl --user call org.berth.Berth1 /org/berth/Berth1 \
    org.berth.Berth1.Manager Ping)
awk -v a="$ctl_version" -v b="$sys_version" -v c="$ctl_status" -v d="$busctl_ping" 'BEGIN {
    printf "ratio berthctl --version / systemctl --version (p50): %.2f (goal <= 1.2)\n", a / b
    printf "ratio berthctl status / busctl Ping (p50):            %.2f (goal <= 1.5)\n", c / d }'
