"""Alerts: rules (unapproved AI tool, usage spike, silent agent), storage with dedupe, pushes."""
