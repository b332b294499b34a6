"""Logger and stable event names of the hub layer (cf. HubConnectionHandlerLog.cs).

Every log line starts with one of these names so operators can grep and alert on them;
keep them stable. Messages never include tokens or argument values.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("hubserver.hub")

ON_CONNECTED_FAILED = "hub.on_connected_failed"
ON_DISCONNECTED_FAILED = "hub.on_disconnected_failed"
HUB_RELEASE_FAILED = "hub.release_failed"
LIFETIME_DISCONNECT_FAILED = "hub.lifetime_disconnect_failed"
METHOD_FAILED = "hub.method_failed"
RESULT_NOT_SERIALIZABLE = "hub.result_not_serializable"
STREAM_FAILED = "hub.stream_failed"
STREAM_CLOSE_FAILED = "hub.stream_close_failed"
DISPATCH_FAILED = "hub.dispatch_failed"
PROTOCOL_ERROR = "hub.protocol_error"
SLOW_CONSUMER_ABORTED = "hub.slow_consumer_aborted"
INBOUND_BUDGET_EXCEEDED = "hub.inbound_budget_exceeded"
WRITE_FAILED = "hub.write_failed"
CLOSE_WRITE_FAILED = "hub.close_write_failed"
TICK_FAILED = "hub.tick_failed"
TASK_FAILED = "hub.task_failed"
