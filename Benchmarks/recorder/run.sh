#!/bin/sh
# Recorder benchmarks through a real release berthd on a private dbus-daemon (see bench.py and RESULTS.md).
#   Benchmarks/recorder/run.sh [--build] [cpu48] [cpu384] [rss]
# Needs python3 (standard library only), dbus-daemon and busctl; no sound card, no root.
set -eu
cd "$(dirname "$0")/../.."
SCRATCH=${SCRATCH:-.build}
if [ "${1:-}" = "--build" ]; then
    shift
    swift build -c release --scratch-path "$SCRATCH"
fi
BUILD=${BUILD:-$SCRATCH/release} exec python3 Benchmarks/recorder/bench.py "$@"
