"""aiusage: live AI-usage analytics platform."""
