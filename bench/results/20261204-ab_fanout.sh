#!/usr/bin/env bash
# Interleaved 10K fan-out A/B: before = eec9d0b, after2 = HEAD of 2026-12-04 (worktrees).
cd /tmp
for i in 1 2; do
  for side in before after2; do
    echo "=== $side run $i $(date -u +%H:%M:%S)"
    (cd /tmp/$side && PYTHONPATH=/tmp/$side/src timeout 500 /work/main/.venv/bin/python bench/fanout.py --n 10000 --reps 1 --stacks raw,hub-json,hub-msgpack 2>&1 | grep -E "^\|")
  done
done
