"""Layer 4a: backplanes behind one HubLifetimeManager interface."""
