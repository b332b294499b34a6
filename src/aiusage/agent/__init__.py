"""The desktop agent (detect AI-tool usage, queue durably, report) and the traffic simulator."""
