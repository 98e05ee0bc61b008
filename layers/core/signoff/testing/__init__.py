"""In-memory fakes of every port, for tests, benchmarks and the local stack. The layer does not ship
this package."""
