#!/usr/bin/env bash
# Hostile loads (issue 13): a Manager.Ping prober's p50/p99 at rest, then while each load runs alone — a 32 MiB
# Pickup.Deploy, Service.Logs(100000) on a 64 MB log, ImportConfig of a FIFO, AddDirectory of a 50,000-file tree —
# each load's p99 over the p99 at rest (goal ≤ 5×), berthd's peak RSS during the upload (goal ≤ 100 MiB),
# crashes and hangs (goal 0).
#
#   Benchmarks/hostile/run.sh [--build]     BUILD_DIR=.build/release REST=5 DEPLOY_MIB=32 LOG_MB=64 LOG_LINE=0
#                                           TREE_FILES=50000 TIMEOUT=30 INTERVAL=1000 QUIET=120 (environment)
# LOG_LINE: bytes per line of the log (0: no newline at all, the worst case of issue 13).
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
REST=${REST:-5}
DEPLOY_MIB=${DEPLOY_MIB:-32}
LOG_MB=${LOG_MB:-64}
LOG_LINE=${LOG_LINE:-0}
TREE_FILES=${TREE_FILES:-50000}
INTERVAL=${INTERVAL:-1000}
QUIET=${QUIET:-120}
header "hostile loads"
results=$out/hostile-results.txt
: > "$results"
crashes=0
hangs=0

# Prepare every load before measuring anything: the 64 MB log of a running service, the FIFO, the tree.
busctl --address="$ADDR" call org.berth.Berth1 /org/berth/Berth1/services org.berth.Berth1.Services Start s logger > /dev/null
logfile=""
for _ in $(seq 100); do
    logfile=$(find "$tmp/state" -name logger.log 2>/dev/null | head -1)
    [ -n "$logfile" ] && break
    sleep 0.05
done
[ -n "$logfile" ] || { echo "no log file for the service logger under $tmp/state" >&2; exit 1; }
bytes=$((LOG_MB * 1000000))
if [ "$LOG_LINE" = 0 ]; then
    head -c "$bytes" /dev/zero | tr '\0' x >> "$logfile"
else
    python3 -S -c "import sys; line = b'x' * ($LOG_LINE - 1) + b'\n'; n = $bytes // $LOG_LINE; sys.stdout.buffer.write(line * n)" >> "$logfile"
fi
mkfifo "$tmp/fifo.yaml"
per=1000
dirs=$(((TREE_FILES + per - 1) / per))
for d in $(seq 1 "$dirs"); do
    mkdir -p "$tmp/tree/d$d"
    n=$((TREE_FILES - (d - 1) * per)); [ "$n" -gt "$per" ] && n=$per
    (cd "$tmp/tree/d$d" && seq -f "f%g.txt" 1 "$n" | xargs touch)
done
echo "# prepared: $logfile ($(stat -c %s "$logfile") bytes, LOG_LINE=$LOG_LINE), $(find "$tmp/tree" -type f | wc -l) files in $dirs folders"
sleep 1

# measure LABEL COMMAND...: the prober runs from 1 s before the load to 1 s after it.
measure() {
    local label=$1; shift
    rm -f "$tmp/stop"
    "$bench" --address "$ADDR" --timeout "$TIMEOUT" --interval "$INTERVAL" ping "$tmp/stop" > "$tmp/ping-$label.txt" & local prober=$!
    sleep 1
    local load="" status=0
    if [ $# -gt 0 ]; then load=$("$@" 2> "$tmp/load-$label.err") || status=$?; else sleep "$REST"; fi
    sleep 1
    touch "$tmp/stop"
    wait "$prober" || true
    local ping; ping=$(cat "$tmp/ping-$label.txt")
    echo "$label $ping load: ${load:-none} status=$status" >> "$results"
    echo "$label: $ping"
    [ -n "$load" ] && echo "$label: load: $load" && sed 's/^/    /' "$tmp/load-$label.err" | head -3
    case "$load" in *result=hang*) hangs=$((hangs + 1)) ;; esac
    local h; h=$(sed -E 's/.* hangs=([0-9]+).*/\1/' <<< "$ping"); hangs=$((hangs + ${h:-0}))
    if ! alive; then echo "$label: berthd DIED"; crashes=$((crashes + 1)); tail -5 "$tmp/berthd.log"; return 1; fi
    # The next load runs alone: wait until berthd has finished this one (a call whose client gave up may still run).
    local q; q=$("$bench" --address "$ADDR" quiet "$QUIET") || true
    [ "${q##*result=}" = ok ] || echo "$label: berthd still busy ${QUIET} s after the load: $q"
}

measure rest
echo 5 > "/proc/$berthd/clear_refs" 2>/dev/null || true   # resets VmHWM: the peak below is the upload's
rss_before=$(rss_kib)
measure deploy "$bench" --address "$ADDR" --timeout "$TIMEOUT" deploy $((DEPLOY_MIB << 20)) big.bin files || true
peak=$(hwm_kib)
echo "deploy: RSS before ${rss_before} KiB, peak during the upload ${peak} KiB (VmHWM)"
# The same bytes as a descriptor (DeployFd): nothing large crosses the bus, so nothing queues behind it.
alive && measure deployfd "$bench" --address "$ADDR" --timeout "$TIMEOUT" deployfd $((DEPLOY_MIB << 20)) big-fd.bin files \
    || true
alive && measure logs "$bench" --address "$ADDR" --timeout "$TIMEOUT" logs /org/berth/Berth1/services/logger 100000 || true
alive && measure import "$bench" --address "$ADDR" --timeout "$TIMEOUT" import "$tmp/fifo.yaml" || true
timeout 2 sh -c ": > '$tmp/fifo.yaml'" 2>/dev/null || true   # lets a reader still blocked on the FIFO go
alive && measure adddir "$bench" --address "$ADDR" --timeout "$TIMEOUT" adddir tree "$tmp/tree" '*.never' || true
alive || crashes=$((crashes + 1))

echo
rest_p99=$(awk '$1 == "rest" { for (i = 2; i <= NF; i++) if ($i ~ /^p99=/) { sub("p99=", "", $i); print $i } }' "$results")
printf '%-8s %10s %10s %12s %12s %12s  %s\n' load p50_us p99_us p99_raw_us max_us p99/rest "the load's call"
while read -r label rest; do
    p50=$(grep -oE ' p50=[0-9.]+' <<< "$rest" | cut -d= -f2)
    p99=$(grep -oE ' p99=[0-9.]+' <<< "$rest" | cut -d= -f2)
    max=$(grep -oE ' max=[0-9.]+' <<< "$rest" | cut -d= -f2)
    raw=$(grep -oE ' p99_raw=[0-9.]+' <<< "$rest" | cut -d= -f2)
    load=$(sed -E 's/.*load: //' <<< "$rest")
    ratio=$(awk -v a="$p99" -v b="$rest_p99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    verdict=""; [ "$label" != rest ] && verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 5 ? "ok" : "OVER 5x") }')
    printf '%-8s %10s %10s %12s %12s %10sx %-7s %s\n' "$label" "$p50" "$p99" "$raw" "$max" "$ratio" "$verdict" "$load"
done < "$results"
peak_mib=$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')
echo "peak RSS during the ${DEPLOY_MIB} MiB upload: $peak_mib MiB (goal <= 100 MiB: $(awk -v m="$peak_mib" 'BEGIN { print (m <= 100 ? "ok" : "OVER") }'))"
echo "crashes: $crashes, hangs: $hangs (goal 0 and 0)"
