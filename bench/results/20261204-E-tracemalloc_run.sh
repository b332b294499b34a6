#!/usr/bin/env bash
# tracemalloc diff of one aiusage serve at 0 and 5,000 idle WebSocket connections.
set -u
SRC=$1; N=${2:-5000}
D=$(mktemp -d /tmp/E/tmdata.XXXX); PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
rm -f /tmp/E/tm0.snap /tmp/E/tm1.snap
cd /tmp/E
PYTHONPATH=$SRC AIUSAGE_LOG_LEVEL=WARNING AIUSAGE_ACCESS_LOG=0 /work/main/.venv/bin/python /tmp/E/tm_serve.py serve --port $PORT --data-dir $D > /tmp/E/tm_serve.log 2>&1 &
SP=$!
for i in $(seq 100); do python3 -c "import socket;socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break; sleep 0.2; done
sleep 2; kill -USR1 $SP; sleep 8
PYTHONPATH=$SRC timeout 300 /work/main/.venv/bin/python -m aiusage.cli loadtest --url http://127.0.0.1:$PORT/hubs/analytics --connections $N --orgs 10 --create-orgs --data-dir $D --transport ws --duration 25 --event-rate 0 --quiet > /tmp/E/tm_lt.log 2>&1 &
LP=$!
sleep 20; kill -USR1 $SP; sleep 10
wait $LP; kill $SP; wait $SP
ls -la /tmp/E/tm*.snap; tail -3 /tmp/E/tm_serve.log
