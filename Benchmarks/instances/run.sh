#!/bin/sh
# Instances benchmarks: New+Start latency, and a rolling deploy through a real nginx under HTTP load.
# Builds with its own scratch path, runs the two measuring tests with BERTH_BENCH=1 and prints their BENCH lines.
set -eu
cd "$(dirname "$0")/../.."
SCRATCH=${SCRATCH:-.build}
swift build --build-tests --scratch-path "$SCRATCH" >/dev/null
for test in newPlusStartLatency rollingDeployThroughNginxLosesNoRequest; do
    BERTH_BENCH=1 "$SCRATCH/debug/berthPackageTests.xctest" --testing-library swift-testing --filter "$test" 2>&1 \
        | grep -E "^BENCH|✘" || true
done
