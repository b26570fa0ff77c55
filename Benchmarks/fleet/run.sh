#!/usr/bin/env bash
# The fleet figures of issue 18, in one run, on loopback:
#   one `berthctl -H` call  vs  the same call locally  vs  busctl over the same SSH transport (what busctl -H
#     builds: --address=unixexec:path=ssh,...,systemd-stdio-bridge)  vs  ssh HOST busctl ...
#   pickup deploy to 10 hosts vs to 1 host (goal: <= 2x)
#   a commit pushed -> every host's git-fed pickup folder deployed it, with a 1 s interval (goal: <= interval + 1 s)
# Starts an sshd on 127.0.0.1 (temp host and user keys, its own ssh_config), HOSTS private dbus-daemons each with a
# berthd (pickup plugin; one git folder fed by a bare repository), and stops everything on every exit path.
#   Benchmarks/fleet/run.sh [--build] [RUNS]        (BIN=.build/debug to measure a debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --build ]]; then
    shift
    swift build -c release >/dev/null
fi
runs=${1:-20}
hosts=${HOSTS:-10}
bin=${BIN:-.build/release}
[[ -x $bin/berthctl && -x $bin/berthd && -f $bin/libPickupPlugin.so ]] || { echo "build first: $0 --build" >&2; exit 1; }
[[ -x /usr/sbin/sshd ]] || { echo "install openssh-server (scripts/install-deps)" >&2; exit 1; }
out=Benchmarks/out
mkdir -p "$out"
cc -O2 -o "$out/exec-time" Benchmarks/berthctl/exec-time.c

tmp=$(mktemp -d /tmp/berth-bench-fleet-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM HUP
export HOME="$tmp" GIT_CONFIG_NOSYSTEM=1
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID JOURNAL_STREAM

# sshd
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/user_key"
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
[[ $(id -u) -ne 0 || -d /run/sshd ]] || mkdir -m 0755 /run/sshd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200
LogLevel ERROR
EOF
echo "[127.0.0.1]:$port $(cat "$tmp/host_key.pub")" > "$tmp/known_hosts"
cat > "$tmp/ssh_config" <<EOF
Host *
  IdentityFile $tmp/user_key
  IdentitiesOnly yes
  UserKnownHostsFile $tmp/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
EOF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" & pids+=($!)
export BERTH_SSH_CONFIG="$tmp/ssh_config"
for _ in $(seq 100); do ssh -F "$tmp/ssh_config" -p "$port" 127.0.0.1 true 2>/dev/null && break; sleep 0.05; done

# the git remote
git init -q --bare -b main "$tmp/remote.git"
git init -q -b main "$tmp/work"
git -C "$tmp/work" remote add origin "$tmp/remote.git"
echo v0 > "$tmp/work/page.txt"
git -C "$tmp/work" add -A
git -C "$tmp/work" -c user.name=bench -c user.email=bench@berth.invalid commit -q -m v0
git -C "$tmp/work" push -q origin main

# HOSTS buses and daemons, each a "host" in hosts.yaml
mkdir -p "$tmp/config/berth"
{
    echo "hosts:"
    for i in $(seq "$hosts"); do echo "  h$i: {ssh: \"127.0.0.1:$port\", address: \"unix:path=$tmp/h$i/bus\"}"; done
    echo "groups:"
    echo "  one: [h1]"
    echo "  all: [$(seq -s ', ' -f 'h%g' "$hosts")]"
} > "$tmp/config/berth/hosts.yaml"
for i in $(seq "$hosts"); do
    h=$tmp/h$i
    mkdir -p "$h/config/berth" "$h/state" "$h/run" "$h/plugins"
    ln -s "$PWD/$bin/libPickupPlugin.so" "$h/plugins/"
    cat > "$h/config/berth/berth.yaml" <<EOF
pickup:
  dirs:
    site:
      git: {url: "$tmp/remote.git", branch: main, interval: 1s}
      target: files
EOF
    cat > "$h/bus.conf" <<CONF
<busconfig><type>session</type><listen>unix:path=$h/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
    dbus-daemon --config-file="$h/bus.conf" --nofork --nopidfile & pids+=($!)
    for _ in $(seq 100); do [[ -S $h/bus ]] && break; sleep 0.05; done
    XDG_CONFIG_HOME="$h/config" XDG_STATE_HOME="$h/state" XDG_RUNTIME_DIR="$h/run" \
        "$bin/berthd" --address "unix:path=$h/bus" --plugin-dir "$h/plugins" >"$h/berthd.log" 2>&1 & pids+=($!)
done
for i in $(seq "$hosts"); do
    for _ in $(seq 200); do
        busctl --address="unix:path=$tmp/h$i/bus" call org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager \
            Ping >/dev/null 2>&1 && break
        sleep 0.05
    done
done
export XDG_CONFIG_HOME="$tmp/config"
a1="unix:path=$tmp/h1/bus"
escaped=$(printf %s "$a1" | sed 's/:/%3a/g; s/=/%3d/g')
unixexec="unixexec:path=ssh,argv1=-xT,argv2=-F,argv3=$(printf %s "$tmp/ssh_config"),argv4=-p,argv5=$port,argv6=--,argv7=127.0.0.1,argv8=systemd-stdio-bridge,argv9=--bus-path%3d$escaped"

row() {  # label, runs, command...
    local label=$1 n=$2; shift 2
    local t; t=$("$out/exec-time" "$n" 2 "$@")
    read -r mn p50 p90 mx <<<"$t"
    awk -v l="$label" -v a="$mn" -v b="$p50" -v c="$p90" -v d="$mx" \
        'BEGIN { printf "%-52s %9.1f %9.1f %9.1f %9.1f\n", l, a / 1000, b / 1000, c / 1000, d / 1000 }' >&2
    echo "$p50"
}
echo "one call, $runs runs each (ms): min p50 p90 max" >&2
local_call=$(row "berthctl plugins (local)" "$runs" "$bin/berthctl" --address "$a1" plugins)
remote_call=$(row "berthctl -H h1 plugins" "$runs" "$bin/berthctl" -H h1 plugins)
busctl_call=$(row "busctl --address=unixexec:...ssh... call Ping" "$runs" busctl --address="$unixexec" call \
    org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager Ping)
ssh_call=$(row "ssh HOST busctl call Ping" "$runs" ssh -F "$tmp/ssh_config" -p "$port" 127.0.0.1 busctl \
    --address="$a1" call org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager Ping)
awk -v l="$local_call" -v r="$remote_call" -v b="$busctl_call" -v s="$ssh_call" 'BEGIN {
    printf "ratio berthctl -H / local (p50):              %.1f\n", r / l
    printf "ratio berthctl -H / busctl over ssh (p50):    %.2f\n", r / b
    printf "ratio berthctl -H / ssh HOST busctl (p50):    %.2f\n", r / s }'

echo v1 > "$tmp/page.html"
deploy_runs=$(( runs / 4 > 3 ? runs / 4 : 3 ))
echo "pickup deploy, $deploy_runs runs each (ms): min p50 p90 max" >&2
one=$(row "berthctl --hosts one pickup deploy (1 host)" "$deploy_runs" "$bin/berthctl" --hosts one pickup deploy \
    "$tmp/page.html" --target files)
all=$(row "berthctl --hosts all pickup deploy ($hosts hosts)" "$deploy_runs" "$bin/berthctl" --hosts all pickup deploy \
    "$tmp/page.html" --target files)
awk -v a="$one" -v b="$all" -v n="$hosts" 'BEGIN { printf "ratio %d hosts / 1 host (p50): %.2f (goal <= 2)\n", n, b / a }'
# The floor on this machine: every "host" is this machine, so both ends of every SSH handshake share its cores.
sshone="ssh -F $tmp/ssh_config -p $port 127.0.0.1 true"
ssh1=$(row "baseline: ssh HOST true (1 host)" "$deploy_runs" sh -c "$sshone")
sshn=$(row "baseline: ssh HOST true x $hosts in parallel" "$deploy_runs" sh -c \
    "for i in \$(seq $hosts); do $sshone & done; wait")
awk -v a="$ssh1" -v b="$sshn" -v n="$hosts" 'BEGIN { printf "ratio ssh %d / 1 in parallel (p50): %.2f\n", n, b / a }'

# commit pushed -> every host deployed it (its files/ published/page.txt holds the new text)
echo "commit pushed -> all $hosts hosts deployed (interval 1 s), 3 runs (ms):" >&2
for run in 1 2 3; do
    text="v$run-$RANDOM"
    echo "$text" > "$tmp/work/page.txt"
    git -C "$tmp/work" -c user.name=bench -c user.email=bench@berth.invalid commit -q -am "$text"
    start=$(date +%s%N)
    git -C "$tmp/work" push -q origin main
    pending=$hosts
    while ((pending > 0)); do
        pending=0
        for i in $(seq "$hosts"); do
            f=$tmp/h$i/state/berth/pickup/published/page.txt
            [[ -e $f && $(cat "$f" 2>/dev/null) == "$text" ]] || pending=$((pending + 1))
        done
        ((pending == 0)) || sleep 0.01
        (( ($(date +%s%N) - start) / 1000000 < 30000 )) || { echo "not every host deployed within 30 s" >&2; exit 1; }
    done
    echo "  run $run: $(( ($(date +%s%N) - start) / 1000000 )) ms (goal <= 2000)" >&2
done
