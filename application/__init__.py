"""Writ's application layer: the command service and its queries."""
