#!/usr/bin/env bash
# 10K WebSocket connections with the load tester of this tree (bounded: timeout 400 s).
set -u
cd /work/main
D=$(mktemp -d /tmp/h10k.XXXX)
PORT=$(.venv/bin/python -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
AIUSAGE_ACCESS_LOG=0 AIUSAGE_LOG_LEVEL=WARNING .venv/bin/python -m aiusage.cli serve --port $PORT --data-dir $D/data > $D/serve.log 2>&1 &
SPID=$!
for i in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.3; done
( while kill -0 $SPID 2>/dev/null; do ps -eo pid,rss,args | grep "aiusage.loadtest.worke[r]" | awk '{print $2}' | sort -n | tail -1 >> $D/worker_rss; sleep 1; done ) &
MON=$!
timeout 400 .venv/bin/python -m aiusage.cli loadtest --url http://127.0.0.1:$PORT/hubs/analytics --connections 10000 --orgs 10 --create-orgs --transport ws --protocol messagepack --duration 20 --event-rate 20 --data-dir $D/data --server-pid $SPID --quiet --report $D/report > $D/result.json 2> $D/loadtest.err
echo "loadtest rc=$?"
kill $SPID; wait $SPID 2>/dev/null; kill $MON 2>/dev/null
echo "worker peak RSS KB: $(sort -n $D/worker_rss | tail -1)"
.venv/bin/python -c "
import json; r=json.load(open('$D/result.json'))
print(json.dumps({k: r[k] for k in ('connections','delivery','latency_ms')}, indent=1))
print('errors', r['errors'][:3])"
echo "dir $D"
