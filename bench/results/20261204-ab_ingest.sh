#!/usr/bin/env bash
# Interleaved same-machine A/B of ingestion: before = eec9d0b, after2 = HEAD of 2026-12-04 (worktrees).
cd /tmp
for i in 1 2 3; do
  for side in before after2; do
    echo "=== $side run $i $(date -u +%H:%M:%S)"
    PYTHONPATH=/tmp/$side/src timeout 600 /work/main/.venv/bin/python /tmp/$side/bench/bench_ingest.py --seconds 10 --reps 1 2>&1 | tail -4
  done
done
