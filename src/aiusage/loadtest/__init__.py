"""``aiusage loadtest``: a 10K+ connection load tester for the AnalyticsHub.

An optional part of the product: ``pip install 'aiusage[loadtest]'`` installs its extra
dependencies (matplotlib for the plots, picows for WebSockets); ``aiusage serve`` runs without
them.

* :mod:`~aiusage.loadtest.wire`: sans-I/O helpers: HTTP responses (httptools), SSE, SignalR
  records, the sequence/time marker.
* :mod:`~aiusage.loadtest.client`: the connections of one worker process (SSE, long polling)
  and what every connection shares.
* :mod:`~aiusage.loadtest.ws`: WebSocket connections on picows (SignalR; Socket.IO and raw
  WebSocket for the comparison stacks).
* :mod:`~aiusage.loadtest.worker`: a worker process (``python -m aiusage.loadtest.worker``).
* :mod:`~aiusage.loadtest.coordinator`: workers, agent-event driver, server sampling, results.
* :mod:`~aiusage.loadtest.report`: JSON report, Markdown summary, PNG plots.
* :mod:`~aiusage.loadtest.setup`: organizations and tokens.
"""

from aiusage.loadtest.coordinator import (
    Coordinator,
    LoadTestConfig,
    LoadTestError,
    parse_target,
    run_loadtest,
)
from aiusage.loadtest.report import write_report

__all__ = [
    "Coordinator",
    "LoadTestConfig",
    "LoadTestError",
    "parse_target",
    "run_loadtest",
    "write_report",
]
