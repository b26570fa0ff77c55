#!/bin/sh
# Recorder benchmarks through a real release berthd on a private dbus-daemon (see bench.py and RESULTS.md).
#   Benchmarks/recorder/run.sh [--build] [cpu48] [cpu384] [rss]
#   Benchmarks/recorder/run.sh [--build] processing [N]     (issue 17: processors and saving; processing.py)
# Needs python3 (standard library only), dbus-daemon and busctl; no sound card, no root.
set -eu
cd "$(dirname "$0")/../.."
SCRATCH=${SCRATCH:-.build}
if [ "${1:-}" = "--build" ]; then
    shift
    swift build -c release --scratch-path "$SCRATCH"
fi
if [ "${1:-}" = "processing" ]; then
    shift
    BUILD=${BUILD:-$SCRATCH/release} exec python3 Benchmarks/recorder/processing.py "$@"
fi
BUILD=${BUILD:-$SCRATCH/release} exec python3 Benchmarks/recorder/bench.py "$@"
