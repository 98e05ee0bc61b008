-- Approval-triggered failures (M5) and approval-induced rollbacks (M7)
-- Approved actions by environment and gate, and how those whose outcome was reported went
-- (POST /v1/checkpoints/{id}/outcome: success, failure or rolled_back). Rates are over reported
-- outcomes: an action whose outcome nobody reported is neither a success nor a failure, and
-- outcome_coverage_pct says how much of the picture that is.
-- Target: failures under 1 %, rollbacks under 2 %.
WITH approved AS (
  SELECT checkpoint_id, environment, gate
  FROM audit_events
  WHERE type = 'decided' AND status = 'APPROVED'
),
outcomes AS (
  SELECT checkpoint_id, outcome
  FROM audit_events
  WHERE type = 'outcome_reported'
)
SELECT
  a.environment,
  a.gate,
  COUNT(*) AS approved,
  SUM(CASE WHEN o.outcome IS NULL THEN 0 ELSE 1 END) AS outcomes_reported,
  SUM(CASE WHEN o.outcome = 'success' THEN 1 ELSE 0 END) AS successes,
  SUM(CASE WHEN o.outcome = 'failure' THEN 1 ELSE 0 END) AS failures,
  SUM(CASE WHEN o.outcome = 'rolled_back' THEN 1 ELSE 0 END) AS rollbacks,
  round(100 * CAST(SUM(CASE WHEN o.outcome = 'failure' THEN 1 ELSE 0 END) AS double)
    / NULLIF(SUM(CASE WHEN o.outcome IS NULL THEN 0 ELSE 1 END), 0), 2) AS failure_pct,
  round(100 * CAST(SUM(CASE WHEN o.outcome = 'rolled_back' THEN 1 ELSE 0 END) AS double)
    / NULLIF(SUM(CASE WHEN o.outcome IS NULL THEN 0 ELSE 1 END), 0), 2) AS rollback_pct,
  round(100 * CAST(SUM(CASE WHEN o.outcome IS NULL THEN 0 ELSE 1 END) AS double) / COUNT(*), 2)
    AS outcome_coverage_pct
FROM approved a
LEFT JOIN outcomes o ON o.checkpoint_id = a.checkpoint_id
GROUP BY a.environment, a.gate
ORDER BY a.environment, a.gate
