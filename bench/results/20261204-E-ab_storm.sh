#!/usr/bin/env bash
# Connect storm, 10K, alternating base (HEAD) and after (HEAD + the changes of docs/benchmarks.md 'Fallbacks at scale'; trees copied under /tmp/E), 3 runs each.
# Run 1 of "after" also samples the restarted server with py-spy (first 20 s of the storm).
for i in 1 2 3; do
  for side in base after2; do
    echo "=== $side run $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    cd /tmp/E/$side
    PYTHONPATH=/tmp/E/$side/src timeout 600 /work/main/.venv/bin/python bench/scenarios/connect_storm.py --n 10000 --orgs 100 --stacks aiusage --quiet --tag E-$side-$i > /tmp/E/storm-$side-$i.txt 2>&1 &
    B=$!
    if [ "$side" = after2 ] && [ "$i" = 1 ]; then
      /work/main/.venv/bin/python /tmp/E/spy_second.py $B 2 20 /tmp/E/spy-storm-after.txt &
    fi
    if [ "$side" = base ] && [ "$i" = 1 ]; then
      /work/main/.venv/bin/python /tmp/E/spy_second.py $B 2 20 /tmp/E/spy-storm-base.txt &
    fi
    wait $B
    grep "| aiusage" /tmp/E/storm-$side-$i.txt
  done
done
