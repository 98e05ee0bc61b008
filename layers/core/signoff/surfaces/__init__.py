"""The chat surfaces: each only translates its platform (Slack, Teams) to the shared use cases."""
