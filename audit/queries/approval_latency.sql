-- Approval latency (M1)
-- Time from request to decision, p50 and p95 in seconds, by environment and gate. A decided
-- event carries latency_seconds (decision time minus request time), so no join is needed.
-- Timeouts count (the caller waited that long); cancellations do not (nobody decided).
-- Auto gates are listed for comparison: they decide at once.
-- Percentiles: Athena's approx_percentile is approximate; DuckDB computes the exact nearest rank.
-- Target: p95 under 15 minutes (900 s) for production human gates.
SELECT
  environment,
  gate,
  COUNT(*) AS decisions,
  approx_percentile(latency_seconds, 0.5) AS p50_seconds,
  approx_percentile(latency_seconds, 0.95) AS p95_seconds,
  MAX(latency_seconds) AS max_seconds,
  SUM(CASE WHEN latency_seconds > 900 THEN 1 ELSE 0 END) AS over_15_minutes
FROM audit_events
WHERE type = 'decided'
GROUP BY environment, gate
ORDER BY environment, gate
