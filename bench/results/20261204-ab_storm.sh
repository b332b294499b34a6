#!/usr/bin/env bash
# Interleaved connect-storm A/B: before = eec9d0b, after2 = HEAD of 2026-12-04 (worktrees).
cd /tmp
while pgrep -f ab_ingest.sh >/dev/null; do sleep 5; done
for i in 1 2; do
  for side in before after2; do
    echo "=== $side run $i $(date -u +%H:%M:%S)"
    (cd /tmp/$side && PYTHONPATH=/tmp/$side/src timeout 400 /work/main/.venv/bin/python bench/scenarios/connect_storm.py --n 5000 --stacks aiusage --quiet --tag ab-$side-$i 2>&1 | grep "| aiusage")
  done
done
