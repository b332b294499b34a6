"""Dashboard metrics: rollups maintained during ingestion, the snapshot service and the
DashboardUpdate coalescer (definitions: docs/metrics.md)."""
