import sys
import tracemalloc

a = tracemalloc.Snapshot.load("/tmp/E/tm0.snap")
b = tracemalloc.Snapshot.load("/tmp/E/tm1.snap")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
a = a.filter_traces(filters)
b = b.filter_traces(filters)
tot = sum(s.size_diff for s in b.compare_to(a, "filename"))
print(f"total python heap growth {tot / 1024 / 1024:.1f} MB = {tot / n:.0f} B/conn")
for key in ("filename", "lineno"):
    print(f"--- by {key}")
    for s in b.compare_to(a, key)[:25]:
        print(f"{s.size_diff / n:8.0f} B/conn {s.count_diff / n:6.2f} obj/conn  {s.traceback}")
