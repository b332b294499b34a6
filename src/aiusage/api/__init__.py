"""REST API: routers (one module each) and the app factory."""
