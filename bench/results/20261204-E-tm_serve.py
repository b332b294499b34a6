"""aiusage serve under tracemalloc; SIGUSR1 writes a snapshot (/tmp/E/tm<k>.snap)."""

import gc
import signal
import sys
import tracemalloc

tracemalloc.start(int(__import__("os").environ.get("TM_FRAMES", "8")))
count = [0]


def dump(*_):
    gc.collect()
    snap = tracemalloc.take_snapshot()
    snap.dump(f"/tmp/E/tm{count[0]}.snap")
    print(f"snapshot {count[0]} written", file=sys.stderr, flush=True)
    count[0] += 1


signal.signal(signal.SIGUSR1, dump)
from aiusage.cli import main  # noqa: E402  (after the signal handler)

sys.argv = ["aiusage", *sys.argv[1:]]
main()
