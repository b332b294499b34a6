"""Real-time layer: the AnalyticsHub, its access rules, and event publishing."""
