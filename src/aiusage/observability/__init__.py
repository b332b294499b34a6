"""Operating aiusage in production: ``/metrics``, JSON logs without credentials,
request ids, per-organization connection limits and DashboardUpdate staleness.

The composition root (:mod:`aiusage.platform`) wires these in; docs/deploy.md is the
operator's guide.
"""

from aiusage.observability.limits import (
    OrgConnectionTracker,
    OrgLimitFilter,
    guard_authenticate,
)
from aiusage.observability.logs import (
    JsonFormatter,
    RedactingFilter,
    RequestIdMiddleware,
    configure_logging,
    redact,
)
from aiusage.observability.metrics import MetricsCollector, install_metrics
from aiusage.observability.staleness import DashboardStaleness

__all__ = [
    "DashboardStaleness",
    "JsonFormatter",
    "MetricsCollector",
    "OrgConnectionTracker",
    "OrgLimitFilter",
    "RedactingFilter",
    "RequestIdMiddleware",
    "configure_logging",
    "guard_authenticate",
    "install_metrics",
    "redact",
]
