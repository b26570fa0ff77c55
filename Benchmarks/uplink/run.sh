#!/usr/bin/env bash
# uplink figures (issue 16) against a release berthd with the pickup and uplink plugins on a private dbus-daemon,
# and a real Mosquitto broker (password file, persistence) on 127.0.0.1 at a free port:
#
#   Benchmarks/uplink/run.sh            SAMPLES=200 BACKLOG=10000 by default
#
#   latency  pickup's Deployed signal as a bus client receives it → the message at a mosquitto_sub of the local
#            broker (%U arrival time), p50/p99; beside it, in the same run, mosquitto_pub → the same subscriber
#            (process start included) as the floor.
#   outage   the broker stopped, BACKLOG real events (pickup deploys) queued in the outbox, the broker started:
#            time until the subscriber (persistent session, reconnecting on its own) has them all, and whether
#            they came in order.
#   RSS      berthd's VmRSS idle (after the latency run) and with BACKLOG pending (pickup's own work included).
#   CPU      berthd's utime+stime from the broker's return to the last message, per 1,000 messages.
#
# The measuring code is UplinkBenchmarkTests (Plugins/Uplink/Tests), run with BERTH_BENCH=1 and BERTH_BUILD_DIR
# pointing at the release products; it prints BENCH lines.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
cd "$root"
SCRATCH=${SCRATCH:-.build}
swift build -c release --scratch-path "$SCRATCH" --product berthd >/dev/null
swift build -c release --scratch-path "$SCRATCH" --product PickupPlugin >/dev/null
swift build -c release --scratch-path "$SCRATCH" --product UplinkPlugin >/dev/null
swift build --build-tests --scratch-path "$SCRATCH" >/dev/null
BERTH_BENCH=1 BERTH_BUILD_DIR="$root/$SCRATCH/release" SAMPLES=${SAMPLES:-200} BACKLOG=${BACKLOG:-10000} \
    "$SCRATCH/debug/berthPackageTests.xctest" --testing-library swift-testing --filter UplinkBenchmarkTests 2>&1 |
    grep -E 'BENCH|✘|passed|failed'
