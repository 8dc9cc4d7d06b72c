#!/usr/bin/env bash
# run-example.sh -- the main job: set up, build, and run tiermem-example, a
# STREAM-style workload whose arrays live in tiermem arenas on the detected
# tiers; it prints where the pages are and migrates an arena between tiers.
#
# usage: scripts/run-example.sh [MiB per array]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$root/build/release"
exec "$root/build/release/tiermem-example" "$@"
