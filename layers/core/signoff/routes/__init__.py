"""Powertools routers, one module per API function."""
