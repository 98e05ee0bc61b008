"""Tools that never run in Lambda: the CLI, the API client, the audit queries and verify, the report.
The layer does not ship this package."""
