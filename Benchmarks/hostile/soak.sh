#!/usr/bin/env bash
# Soak (issue 13): CALLS mixed calls + CYCLES job cycles (Services.Stop of a stopped service: a job that ends at
# once, job_retention 100ms) against berthd with the four shipped plugins; berthd's RSS after a warm-up round
# against its RSS at the end (goal: growth ≤ 1 MiB), crashes and hangs (goal 0).
#
#   Benchmarks/hostile/soak.sh [--build]    BUILD_DIR=.build/release CALLS=100000 CYCLES=10000
#                                           WARM_CALLS=10000 WARM_CYCLES=1000 SETTLE=3 TIMEOUT=30 (environment)
#                                           SPLIT=1 then runs the calls alone and the job cycles alone, RSS after each
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
CALLS=${CALLS:-100000}
CYCLES=${CYCLES:-10000}
WARM_CALLS=${WARM_CALLS:-10000}
WARM_CYCLES=${WARM_CYCLES:-1000}
SETTLE=${SETTLE:-3}
header "soak"
rss_start=$(rss_kib)
warm=$("$bench" --address "$ADDR" --timeout "$TIMEOUT" soak "$WARM_CALLS" "$WARM_CYCLES" idle) || true
echo "warm-up: $warm"
sleep "$SETTLE"   # finished jobs go after job_retention
rss_warm=$(rss_kib)
soak=$("$bench" --address "$ADDR" --timeout "$TIMEOUT" soak "$CALLS" "$CYCLES" idle) || true
echo "soak:    $soak"
sleep "$SETTLE"
rss_end=$(rss_kib)
if [ -n "${SPLIT:-}" ]; then
    # Which part grows: CALLS calls alone, then CYCLES job cycles alone, RSS after each (settled).
    c=$("$bench" --address "$ADDR" --timeout "$TIMEOUT" soak "$CALLS" 0 idle) || true
    sleep "$SETTLE"; rss_calls=$(rss_kib)
    j=$("$bench" --address "$ADDR" --timeout "$TIMEOUT" soak 0 "$CYCLES" idle) || true
    sleep "$SETTLE"; rss_jobs=$(rss_kib)
    echo "split: calls alone: $c -> RSS $rss_calls KiB (+$((rss_calls - rss_end)) KiB);" \
        "job cycles alone: $j -> RSS $rss_jobs KiB (+$((rss_jobs - rss_calls)) KiB)"
fi
crashes=0; alive || crashes=1
hangs=$(grep -oE 'hangs=[0-9]+' <<< "$warm $soak" | cut -d= -f2 | awk "{s += \$1} END {print s + 0}")
jobs_left=$(busctl --address="$ADDR" call org.berth.Berth1 /org/berth/Berth1 org.berth.Berth1.Manager ListJobs 2>/dev/null | awk '{print $2}')
growth=$((rss_end - rss_warm))
echo "RSS: start $rss_start KiB, after warm-up $rss_warm KiB, end $rss_end KiB; growth after warm-up $growth KiB" \
    "(goal <= 1024 KiB: $([ "$growth" -le 1024 ] && echo ok || echo OVER)); jobs still listed: ${jobs_left:-?}"
echo "crashes: $crashes, hangs: ${hangs:-0} (goal 0 and 0)"
