"""Layer 4b: hub semantics over one connection."""
