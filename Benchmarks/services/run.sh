#!/usr/bin/env bash
# The services benchmark of issue 3: berthd's services plugin and supervisord 4.x, measured in ONE run on ONE machine.
#
#   Benchmarks/services/run.sh [--build]
#
#   --build            swift build -c release first
#   BUILD=DIR          where the release berthd, libBerthKit.so and libServicesPlugin.so are (default .build/release)
#   SUPERVISOR_VENV=D  a venv with `pip install supervisor` (default /tmp/svenv; created when missing)
#   STARTS=200 CRASHES=100 MANY=100
#
# berthd: a private dbus-daemon, temporary XDG folders, a config with services one (sleep), crash (restart: always,
# restart_delay: 0) and s000..s099; driven by services-bench (C, sd-bus, one connection). Start -> the job's
# JobRemoved; crash -> kill -9 of MainPID until a new MainPID is active (polled with Get); many -> Start of all at
# once until every JobRemoved; RSS of berthd with them running.
# supervisord: the same programs (startsecs=0) driven by supervisord_bench.py through XML-RPC on a unix socket:
# startProcess(wait) ; kill -9 then getProcessInfo until a new pid is RUNNING ; startProcessGroup(wait).
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
BUILD=${BUILD:-$root/.build/release}
SUPERVISOR_VENV=${SUPERVISOR_VENV:-/tmp/svenv}
STARTS=${STARTS:-200} CRASHES=${CRASHES:-100} MANY=${MANY:-100}
[[ ${1:-} == --build ]] && (cd "$root" && swift build -c release)
[[ -x $SUPERVISOR_VENV/bin/supervisord ]] || { python3 -m venv "$SUPERVISOR_VENV" && "$SUPERVISOR_VENV/bin/pip" install -q supervisor; }

work=$(mktemp -d /tmp/berth-svc-bench-XXXXXX)
# The runtime folder is a tmpfs, as XDG_RUNTIME_DIR (/run/user/UID) and /run are on a real host: the supervisor
# rewrites its pids file there (with fsync) at every spawn and exit. This container's /run is on ext4.
runtime=$(mktemp -d /dev/shm/berth-svc-run-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" "$runtime"; }
trap cleanup EXIT
cc -O2 -Wall -I "$here/../c" -o "$work/services-bench" "$here/services-bench.c" $(pkg-config --cflags --libs libsystemd)

dbus-daemon --session --address="unix:path=$work/bus" --nofork --nopidfile --print-address=3 3>"$work/address" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/address ]] && break; sleep 0.05; done
address=$(head -1 "$work/address")
mkdir -p "$work/config/berth" "$work/state" "$work/plugins"
ln -s "$BUILD/libServicesPlugin.so" "$work/plugins/"
{
    echo "services:"
    echo "  units:"
    echo "    one: { exec: [sleep, \"300\"], restart: \"no\" }"
    echo "    crash: { exec: [sleep, \"300\"], restart: always, restart_delay: 0, start_limit_burst: 10000, start_limit_interval: 1s }"
    for i in $(seq 0 $((MANY - 1))); do printf '    s%03d: { exec: [sleep, "300"] }\n' "$i"; done
} >"$work/config/berth/berth.yaml"
env -u NOTIFY_SOCKET HOME="$work" XDG_CONFIG_HOME="$work/config" XDG_STATE_HOME="$work/state" XDG_RUNTIME_DIR="$runtime" \
    "$BUILD/berthd" --address "$address" --plugin-dir "$work/plugins" 2>"$work/berthd.log" &
berthd=$!
pids+=($berthd)
for _ in $(seq 200); do busctl --address="$address" status org.berth.Berth1 >/dev/null 2>&1 && break; sleep 0.05; done

"$work/services-bench" "$address" starts "$STARTS" | sed 's/^sample/starts/' >"$work/results" || { cat "$work/berthd.log" >&2; exit 1; }
"$work/services-bench" "$address" crash "$CRASHES" | sed 's/^sample/crash/' >>"$work/results"
"$work/services-bench" "$address" many "$MANY" | sed 's/^sample/many/' >>"$work/results"
echo "rss_kib $(awk '/^VmRSS:/ {print $2}' /proc/$berthd/status)" >>"$work/results"
running=$(busctl --address="$address" call org.berth.Berth1 /org/berth/Berth1/services org.berth.Berth1.Services List | grep -o '"active"' | wc -l)
kill -TERM "$berthd"; wait "$berthd" || true

mkdir -p "$work/sv"
"$SUPERVISOR_VENV/bin/python" "$here/supervisord_bench.py" "$work/sv" "$STARTS" "$CRASHES" "$MANY" >"$work/sv-results"
version=$("$SUPERVISOR_VENV/bin/supervisord" --version)

python3 - "$work/results" "$work/sv-results" "$running" "$version" "$STARTS" "$CRASHES" "$MANY" <<'PY'
import statistics, sys
def load(path):
    rows = {}
    for line in open(path):
        key, value = line.split()
        rows.setdefault(key, []).append(int(value))
    return rows
b, s = load(sys.argv[1]), load(sys.argv[2])
running, version, starts, crashes, many = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
def ms(us): return f"{us / 1000:.2f} ms"
rows = [
    (f"start -> job done, p50 of {starts} (immediate readiness)", statistics.median(b["starts"]), statistics.median(s["starts"]), ms),
    (f"crash -> running again, p50 of {crashes} (restart_delay 0)", statistics.median(b["crash"]), statistics.median(s["crash"]), ms),
    (f"{many} services started together -> all active", b["many"][0], s["many"][0], ms),
    (f"daemon RSS with {many} running", b["rss_kib"][0], s["rss_kib"][0], lambda k: f"{k / 1024:.1f} MB"),
]
print(f"| figure | berthd | supervisord {version} | berthd / supervisord |")
print("| --- | --- | --- | --- |")
for name, x, y, fmt in rows:
    print(f"| {name} | {fmt(x)} | {fmt(y)} | {x / y:.2f} |")
print(f"\nberthd p90: start {ms(sorted(b['starts'])[int(len(b['starts']) * 0.9)])}, crash {ms(sorted(b['crash'])[int(len(b['crash']) * 0.9)])}; "
      f"supervisord p90: start {ms(sorted(s['starts'])[int(len(s['starts']) * 0.9)])}, crash {ms(sorted(s['crash'])[int(len(s['crash']) * 0.9)])}; "
      f"services active in berthd after 'many': {running}")
PY
