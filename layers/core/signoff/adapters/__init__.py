"""Adapters implementing the ports: AWS (boto3) and in-memory fakes for tests and benchmarks."""
