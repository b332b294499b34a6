"""Pure domain model of the platform: agent events and their validation.

No I/O and no framework imports here (import-linter contract "domain is pure").
"""
