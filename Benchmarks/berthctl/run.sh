#!/usr/bin/env bash
# berthctl's start-up cost against the tools people compare it with (issue 15), in one run:
#   berthctl --version  vs  systemctl --version        goal: p50 ratio <= 1.2
#   berthctl status     vs  busctl call ... Manager Ping  goal: p50 ratio <= 1.5
# Builds berthctl and berthd in release (--build), starts a private dbus-daemon and berthd (no plugins) in a temp
# folder, times RUNS rounds of fork+exec+wait of each pair, alternating (exec-time.c), prints min/p50/p90/max in ms
# and the ratios (of the p50s, and the median of the per-round ratios, which a busy machine disturbs least),
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

# pair LABEL_A LABEL_B -- commands: A and B alternate round by round (exec-time's paired mode), so a busy machine
# weighs on both alike; prints both and the median of the per-round ratios A/B.
pair() {
    local la=$1 lb=$2; shift 2
    local t; t=$("$out/exec-time" "$runs" 20 "$@")
    local ra rb ratio
    ra=$(sed -n 1p <<<"$t"); rb=$(sed -n 2p <<<"$t"); ratio=$(sed -n 3p <<<"$t")
    read -r a1 a2 a3 a4 <<<"$ra"; read -r b1 b2 b3 b4 <<<"$rb"
    awk -v l="$la" -v a="$a1" -v b="$a2" -v c="$a3" -v d="$a4" \
        'BEGIN { printf "%-34s %8.2f %8.2f %8.2f %8.2f\n", l, a / 1000, b / 1000, c / 1000, d / 1000 }'
    awk -v l="$lb" -v a="$b1" -v b="$b2" -v c="$b3" -v d="$b4" \
        'BEGIN { printf "%-34s %8.2f %8.2f %8.2f %8.2f\n", l, a / 1000, b / 1000, c / 1000, d / 1000 }'
    awk -v a="$a2" -v b="$b2" -v r="$ratio" -v l="$la / $lb" \
        'BEGIN { printf "ratio %s: p50 %.2f, median per-round %.2f\n", l, a / b, r }'
}
echo "berthctl start-up, $runs rounds (ms): min p50 p90 max; uptime: $(uptime | sed 's/.*load/load/')"
pair "berthctl --version" "systemctl --version" "$bin/berthctl" --version -- systemctl --version
echo "  (goal <= 1.2)"
pair "berthctl status" "busctl --user call ... Ping" "$bin/berthctl" status -- \
    busctl --user call org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager Ping
echo "  (goal <= 1.5)"
