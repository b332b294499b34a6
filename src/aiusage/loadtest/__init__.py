"""``aiusage loadtest``: a 10K+ connection load tester for the AnalyticsHub.

An optional part of the product: ``pip install 'aiusage[loadtest]'`` installs its extra
dependencies (matplotlib for the plots); ``aiusage serve`` runs without them.

* :mod:`~aiusage.loadtest.wire`: sans-I/O WebSocket/HTTP/SSE/SignalR framing of our own client.
* :mod:`~aiusage.loadtest.client`: the connections (WebSockets, SSE, long polling; Socket.IO and
  raw WebSocket for the comparison stacks) of one worker process.
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
