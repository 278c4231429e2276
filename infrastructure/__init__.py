"""Writ's edges: persistence settings and recorders, the bus relay, the CLI."""
