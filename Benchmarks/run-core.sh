#!/usr/bin/env bash
# berth core benchmarks: every figure of issue 2, section 8, through ONE private dbus-daemon in ONE run.
#
#   Benchmarks/run-core.sh [--build] [--count M] [--warmup N] [--rounds K] [--runs R] [--signals S]
#
#   --build       run `swift build -c release --product berthd` at the repo root first
#   --count M     timed sequential calls per latency row (default 10000; env COUNT)
#   --warmup N    untimed calls per row before them (default 1000; env WARMUP)
#   --rounds K    the rows take turns in K blocks of M/K calls, so that a drift of the machine touches every
#                 row alike (default 50; 1 = each row in one go; env ROUNDS)
#   --runs R      exec -> name-owned repetitions (default 20; env RUNS)
#   --signals S   signals for the echo signal-rate row, 0 to skip (default 100000; env SIGNALS)
#   BERTHD=PATH   the daemon to measure (default .build/release/berthd); the berthd rows are skipped, with a
#                 message, when it does not exist.
#
# Rows: org.freedesktop.DBus.GetId (answered by the bus itself), the C echo service's Ping (the floor F) and
# Get(Version), the Ping of a second, identical echo service (an A/A control: its ratio to F is the noise of this
# run), berthd's Manager.Ping and Get(Version) with ratios to F, exec -> name owned (median) for the echo service
# and for berthd, idle RSS of both, and the echo service's signal rate. All latency rows are measured by one
# client process through one connection.
# Raw result lines go to Benchmarks/out/core-results.txt, the table also to Benchmarks/out/core-table.txt.
# Nothing here touches the host's buses or $HOME: the bus, the XDG folders and HOME of berthd are temporary.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname -- "$here")
out=$here/out

COUNT=${COUNT:-10000}
WARMUP=${WARMUP:-1000}
ROUNDS=${ROUNDS:-}
RUNS=${RUNS:-20}
SIGNALS=${SIGNALS:-100000}
build_berthd=0
berthd_default=$root/.build/release/berthd
BERTHD=${BERTHD:-$berthd_default}
command_line="Benchmarks/run-core.sh${*:+ $*}"
[[ $BERTHD == "$berthd_default" ]] || command_line="BERTHD=$BERTHD $command_line"

die() { printf 'run-core: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
need_value() { (($# >= 2)) || die "$1 needs a value"; }

while (($#)); do
    case $1 in
    --build) build_berthd=1 ;;
    --count) need_value "$@"; COUNT=$2; shift ;;
    --warmup) need_value "$@"; WARMUP=$2; shift ;;
    --runs) need_value "$@"; RUNS=$2; shift ;;
    --rounds) need_value "$@"; ROUNDS=$2; shift ;;
    --signals) need_value "$@"; SIGNALS=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
is_uint "$COUNT" && ((COUNT > 0)) || die "--count needs a positive integer, not '$COUNT'"
is_uint "$WARMUP" || die "--warmup needs a non-negative integer, not '$WARMUP'"
[[ -n $ROUNDS ]] || ROUNDS=$((COUNT < 50 ? COUNT : 50))
is_uint "$ROUNDS" && ((ROUNDS > 0 && ROUNDS <= COUNT)) || die "--rounds needs an integer from 1 to --count, not '$ROUNDS'"
is_uint "$RUNS" && ((RUNS > 0)) || die "--runs needs a positive integer, not '$RUNS'"
is_uint "$SIGNALS" || die "--signals needs a non-negative integer, not '$SIGNALS'"

for tool in cc pkg-config dbus-daemon; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install gcc pkg-config dbus)"
done
pkg-config --exists libsystemd || die "libsystemd is not found by pkg-config (Debian: apt-get install libsystemd-dev)"

# ---- processes we start, and their cleanup on every path ---------------------------------------------------------
tmp=
started=() # pids of our background children still running, in start order

# With util-linux setpriv, every child we start also gets SIGTERM if this script dies without its trap (SIGKILL).
pdeath=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then pdeath=(setpriv --pdeathsig TERM --); fi

forget() {
    local pid=$1 keep=() p
    for p in "${started[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    started=("${keep[@]}")
}

# alive PID: true while PID runs (a zombie, exited but not yet reaped, counts as gone).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != [ZX] ]]
}

# stop PID: SIGTERM, SIGKILL after 5 s, reap it.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        printf 'run-core: pid %s ignored SIGTERM for 5 s; killing it\n' "$pid" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

cleanup() {
    local rc=$? i
    trap - EXIT
    trap '' INT TERM HUP # finish cleaning up even when interrupted again
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop "${started[i]}"; done
    [[ -z $tmp ]] || rm -rf -- "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
if ((${#tmp} > 80)); then # a unix socket path has at most 107 bytes
    rmdir "$tmp"
    tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
fi


# ---- build -------------------------------------------------------------------------------------------------------
mkdir -p "$out"
read -r -a sd_flags <<<"$(pkg-config --cflags --libs libsystemd)"
for prog in echo-service bus-latency; do
    cc -O2 -Wall -Wextra -o "$out/$prog" "$here/c/$prog.c" "${sd_flags[@]}" -lm ||
        die "building $prog failed"
done
if ((build_berthd)); then
    command -v swift >/dev/null || die "--build needs swift on PATH"
    (cd "$root" && swift build -c release --product berthd) || die "swift build -c release --product berthd failed"
fi


# ---- the private bus ---------------------------------------------------------------------------------------------
cat >"$tmp/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
"${pdeath[@]}" dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile --nosyslog --print-address=1 \
    >"$tmp/bus.addr" 2>"$tmp/bus.log" &
bus_pid=$!
started+=("$bus_pid")
addr=
for ((i = 0; i < 100; i++)); do
    addr=$(head -n 1 "$tmp/bus.addr" 2>/dev/null || true)
    [[ -n $addr ]] && break
    alive "$bus_pid" || die "dbus-daemon exited: $(cat "$tmp/bus.log")"
    sleep 0.05
done
[[ -n $addr ]] || die "dbus-daemon printed no address within 5 s"

# Everything below talks to the private bus only; nothing may reach the host's buses or the service manager.
export DBUS_SESSION_BUS_ADDRESS=$addr
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/no-system-bus
unset DBUS_STARTER_ADDRESS DBUS_STARTER_BUS_TYPE NOTIFY_SOCKET JOURNAL_STREAM WATCHDOG_USEC WATCHDOG_PID \
    LISTEN_FDS LISTEN_PID LISTEN_FDNAMES

bl=("$out/bus-latency" --address "$addr")
results=$out/core-results.txt
: >"$results"

# measure NAME ARGS...: run bus-latency in the background (so a signal to this script is handled at once),
# keep its result line in $tmp/NAME.res and its diagnostics in $tmp/NAME.log. Returns its exit status.
measure() {
    local name=$1 pid rc=0
    shift
    "${pdeath[@]}" "$@" >"$tmp/$name.res" 2>"$tmp/$name.log" &
    pid=$!
    started+=("$pid")
    wait "$pid" || rc=$?
    forget "$pid"
    if ((rc == 0)); then
        cat "$tmp/$name.res" >>"$results"
    else
        printf 'run-core: %s failed (exit %s):\n' "$name" "$rc" >&2
        sed 's/^/    /' "$tmp/$name.log" >&2
    fi
    return "$rc"
}

# field NAME KEY: a value from a result line, empty when the row did not run.
field() {
    [[ -s $tmp/$1.res ]] || return 0
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$tmp/$1.res"
}

echo "run-core: private bus at $addr" >&2

# cpu_busy SECONDS: percent of all CPU time that was not idle over SECONDS (everyone's, not only ours).
cpu_busy() {
    local a b
    a=$(head -n 1 /proc/stat)
    sleep "$1"
    b=$(head -n 1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x); split(b, y); total = 0
        for (i = 2; i <= n && i <= 9; i++) total += y[i] - x[i] # user..steal; guest is inside user
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
busy_before=$(cpu_busy 1)
if ((busy_before > 10)); then
    printf 'run-core: warning: the machine is busy (%s%% of CPU time in use before we start); figures will be noisy\n' \
        "$busy_before" >&2
fi

# rss_kb PID: VmRSS in kB, empty when PID is gone.
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null || true; }

# ---- berthd's environment ------------------------------------------------------------------------------------------
berthd_state=missing # missing | measured | failed
berthd_pid= berthd_rss= berthd_rss_after= echo_rss=
berthd_failed=()
berthd_fail() {
    berthd_state=failed
    berthd_failed+=("$1")
}
if [[ -f $BERTHD && -x $BERTHD ]]; then
    berthd_state=measured
    mkdir -p "$tmp/home" "$tmp/config/berth" "$tmp/state" "$tmp/data" "$tmp/cache" "$tmp/plugins"
    mkdir -m 700 "$tmp/runtime"
    : >"$tmp/config/berth/berth.yaml" # empty config; the plugin folder is empty too, so no plugin loads
    berthd_env=(HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state"
        XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache" XDG_RUNTIME_DIR="$tmp/runtime")
    berthd_cmd=("$BERTHD" --address "$addr" --config "$tmp/config/berth/berth.yaml" --plugin-dir "$tmp/plugins")
fi

# ---- exec -> name owned, while nobody owns the names ---------------------------------------------------------------
echo "run-core: echo-service exec -> name owned, $RUNS runs" >&2
measure echo-exec "${bl[@]}" --runs "$RUNS" --timeout 10 --log "$tmp/echo-exec.out" --label echo.exec-name \
    exec-name org.berth.BenchEcho "$out/echo-service" --address "$addr" || die "echo-service exec -> name failed"
if [[ $berthd_state != missing ]]; then
    echo "run-core: berthd exec -> name owned, $RUNS runs" >&2
    # bus-latency passes this environment on to each berthd it starts.
    measure berthd-exec env "${berthd_env[@]}" "${bl[@]}" --runs "$RUNS" --timeout 10 --log "$tmp/berthd-exec.out" \
        --label berthd.exec-name exec-name org.berth.Berth1 "${berthd_cmd[@]}" ||
        { berthd_fail "exec -> name"; sed 's/^/    berthd: /' "$tmp/berthd-exec.out" | tail -n 20 >&2; }
fi

# ---- the long-running services: echo (F), a second echo (the A/A control), berthd ----------------------------------
"${pdeath[@]}" "$out/echo-service" --address "$addr" </dev/null >"$tmp/echo.log" 2>&1 &
echo_pid=$!
started+=("$echo_pid")
"${pdeath[@]}" "$out/echo-service" --address "$addr" --name org.berth.BenchEcho2 </dev/null >"$tmp/echo2.log" 2>&1 &
echo2_pid=$!
started+=("$echo2_pid")
measure echo-up "${bl[@]}" --timeout 5 --pid "$echo_pid" wait-name org.berth.BenchEcho ||
    die "the echo service did not start: $(cat "$tmp/echo.log")"
measure echo2-up "${bl[@]}" --timeout 5 --pid "$echo2_pid" wait-name org.berth.BenchEcho2 ||
    die "the second echo service did not start: $(cat "$tmp/echo2.log")"

if [[ $berthd_state != missing ]]; then
    "${pdeath[@]}" env "${berthd_env[@]}" "${berthd_cmd[@]}" </dev/null >"$tmp/berthd.log" 2>&1 &
    berthd_pid=$!
    started+=("$berthd_pid")
    if ! measure berthd-up "${bl[@]}" --timeout 10 --pid "$berthd_pid" wait-name org.berth.Berth1; then
        berthd_fail "start"
        sed 's/^/    berthd: /' "$tmp/berthd.log" | tail -n 20 >&2
        stop "$berthd_pid"
        berthd_pid=
    fi
fi
sleep 1 # idle
echo_rss=$(rss_kb "$echo_pid")
if [[ -n $berthd_pid ]]; then
    berthd_rss=$(rss_kb "$berthd_pid")
    [[ -n $berthd_rss ]] || berthd_fail "idle RSS"
fi

# ---- latency: all rows by one client, interleaved ------------------------------------------------------------------
floor_rows=(
    GetId=call,org.freedesktop.DBus,/org/freedesktop/DBus,org.freedesktop.DBus,GetId
    echo.Ping=call,org.berth.BenchEcho,/org/berth/BenchEcho,org.berth.BenchEcho,Ping
    echo2.Ping=call,org.berth.BenchEcho2,/org/berth/BenchEcho,org.berth.BenchEcho,Ping
    echo.Get.Version=get,org.berth.BenchEcho,/org/berth/BenchEcho,org.berth.BenchEcho,Version
)
berthd_rows=(
    berthd.Manager.Ping=call,org.berth.Berth1,/org/berth/Berth1,org.berth.Berth1.Manager,Ping
    berthd.Get.Version=get,org.berth.Berth1,/org/berth/Berth1,org.berth.Berth1.Manager,Version
)
lat=("${bl[@]}" --warmup "$WARMUP" --count "$COUNT" --rounds "$ROUNDS")
latency_ok=0
if [[ -n $berthd_pid ]]; then
    echo "run-core: latency, 6 rows interleaved in $ROUNDS rounds, $COUNT calls each" >&2
    if measure latency "${lat[@]}" rows "${floor_rows[@]}" "${berthd_rows[@]}"; then
        latency_ok=1
    else
        berthd_fail "latency rows"
        sed 's/^/    berthd: /' "$tmp/berthd.log" | tail -n 20 >&2
    fi
    berthd_rss_after=$(rss_kb "$berthd_pid")
fi
if ((!latency_ok)); then
    echo "run-core: latency, 4 floor rows interleaved in $ROUNDS rounds, $COUNT calls each" >&2
    measure latency "${lat[@]}" rows "${floor_rows[@]}" || die "the floor rows failed"
fi
# one .res file per row, for `field`
while read -r label rest; do printf '%s %s\n' "$label" "$rest" >"$tmp/$label.res"; done <"$tmp/latency.res"

if ((SIGNALS > 0)); then
    echo "run-core: echo signal rate, $SIGNALS signals" >&2
    measure echo-signals "${bl[@]}" --timeout 60 --label echo.signals \
        signals org.berth.BenchEcho /org/berth/BenchEcho org.berth.BenchEcho Tick Emit "$SIGNALS" ||
        die "the echo signal rate failed"
fi
[[ -n $berthd_pid ]] && stop "$berthd_pid"
[[ -n $berthd_rss ]] && echo "berthd.rss idle_kb=$berthd_rss after_calls_kb=${berthd_rss_after:-?}" >>"$results"
[[ -n $echo_rss ]] && echo "echo.rss idle_kb=$echo_rss" >>"$results"

# ---- the table -------------------------------------------------------------------------------------------------------
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { # VALUE LIMIT: PASS when VALUE <= LIMIT
    if [[ -n $1 ]]; then awk -v v="$1" -v l="$2" 'BEGIN { print ((v <= l) ? "PASS" : "FAIL") }'; else echo "-"; fi
}
ms() { [[ -n $1 ]] && awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }

F=$(field echo.Ping p50)
FMIN=$(field echo.Ping min)
EG=$(field echo.Get.Version p50)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
ncpu=$(nproc)
dbus_version=$(dbus-daemon --version | sed -n '1s/.* \([0-9][0-9.]*\)$/\1/p')

{
    echo "berth core benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $ncpu CPUs (${cpu_model:-unknown}), nothing pinned; Linux $(uname -r)"
    echo "other load: CPU ${busy_before}% busy in the second before the run; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "libsystemd $(pkg-config --modversion libsystemd), dbus-daemon ${dbus_version:-?}, one private bus, one client"
    if ((ncpu < 4)); then
        echo "note: $ncpu CPUs for client, bus daemon and service: cross-CPU wake-ups make absolute figures noisy;"
        echo "      compare ratios, and the A/A control row shows how far two identical services differ here"
    fi
    echo "latency: $COUNT sequential calls per row after $WARMUP warm-up, rows interleaved in $ROUNDS rounds;"
    echo "         sd_bus_call() timed alone; nearest-rank percentiles in µs; F = echo Ping p50, eG = echo Get p50;"
    echo "         min/F = min over echo Ping min: the cost without wake-up noise (the targets are on p50)"
    echo "command: $command_line"
    echo
    printf '%-32s %7s %7s %7s %7s %8s %6s %6s %6s  %s\n' row min p50 p90 p99 max "p50/F" "p50/eG" "min/F" target
    row() { # LABEL RESULT [TARGET]
        local p m
        p=$(field "$2" p50)
        m=$(field "$2" min)
        printf '%-32s %7s %7s %7s %7s %8s %6s %6s %6s  %s\n' "$1" "$m" "$p" "$(field "$2" p90)" \
            "$(field "$2" p99)" "$(field "$2" max)" "$(ratio "$p" "$F")" "$(ratio "$p" "$EG")" \
            "$(ratio "$m" "$FMIN")" "${3-}"
    }
    row "org.freedesktop.DBus.GetId (bus)" GetId
    row "echo Ping  (F)" echo.Ping
    row "echo2 Ping (A/A control)" echo2.Ping
    row "echo Get(Version)  (eG)" echo.Get.Version
    case $berthd_state in
    missing)
        echo "berthd rows skipped: no executable at $BERTHD"
        echo "  (build it with 'swift build -c release' at the repo root, pass --build, or set BERTHD=path)"
        ;;
    *)
        if ((latency_ok)); then
            row "berthd Manager.Ping" berthd.Manager.Ping \
                "≤ 1.20 F  $(verdict "$(ratio "$(field berthd.Manager.Ping p50)" "$F")" 1.20)"
            row "berthd Get(Version)" berthd.Get.Version \
                "≤ 1.30 F  $(verdict "$(ratio "$(field berthd.Get.Version p50)" "$F")" 1.30)"
        else
            echo "berthd latency rows: FAILED (see stderr)"
        fi
        ;;
    esac
    echo
    printf '%-32s %7s %7s %7s %7s  %s\n' "exec -> name owned, ms" median min p90 max target
    erow() { # LABEL RESULT [TARGET]
        printf '%-32s %7s %7s %7s %7s  %s\n' "$1" "$(ms "$(field "$2" median)")" "$(ms "$(field "$2" min)")" \
            "$(ms "$(field "$2" p90)")" "$(ms "$(field "$2" max)")" "${3-}"
    }
    erow "echo-service ($RUNS runs)" echo-exec
    if [[ $berthd_state != missing ]]; then
        m=$(ms "$(field berthd-exec median)" || true)
        erow "berthd ($RUNS runs)" berthd-exec "≤ 50 ms  $(verdict "$m" 50)"
        s=$(ms "$(field berthd-exec stop_median)" || true)
        if [[ -n $s ]]; then
            echo "berthd SIGTERM -> exit, median $s ms; runs not ending with exit 0: $(field berthd-exec bad_exits)"
        fi
    fi
    echo
    printf 'idle RSS, 1 s after start:  echo-service %s kB' "${echo_rss:-?}"
    if [[ -n ${berthd_rss:-} ]]; then
        # 10 MB = 10,000,000 bytes = 9765.6 kB (VmRSS counts KiB)
        printf ';  berthd (no plugins) %s kB = %.1f MiB  target ≤ 10 MB  %s' "$berthd_rss" \
            "$(awk -v k="$berthd_rss" 'BEGIN { print k / 1024 }')" "$(verdict "$berthd_rss" 9765.6)"
        printf '\n                            berthd after the latency rows %s kB' "${berthd_rss_after:-?}"
    fi
    printf '\n'
    if [[ -s $tmp/echo-signals.res ]]; then
        printf 'echo signal rate: %s signals in %s s = %s signals/s to one subscriber\n' \
            "$(field echo-signals signals)" "$(field echo-signals seconds)" "$(field echo-signals rate)"
    fi
    if [[ $berthd_state == failed ]]; then
        echo
        echo "berthd FAILED at: ${berthd_failed[*]} (details on stderr above; berthd's own output is in them)"
    fi
} | tee "$out/core-table.txt"

[[ $berthd_state != failed ]]
