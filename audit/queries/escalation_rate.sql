-- Escalation rate (M4)
-- Share of gated (soft or hard) checkpoints that were escalated at least once, by environment
-- and gate: on timeout (the first wait ended undecided, data.manual = false) or by hand (an
-- approver pressed Escalate, data.manual = true). A checkpoint counts once however often it
-- was escalated.
-- Target: under 5 %; more means the first approvers are not covering the gate.
WITH gated AS (
  SELECT checkpoint_id, environment, gate
  FROM audit_events
  WHERE type = 'requested' AND gate <> 'auto'
),
escalations AS (
  SELECT
    checkpoint_id,
    MAX(CASE WHEN json_extract_scalar(data, '$.manual') = 'true' THEN 1 ELSE 0 END) AS by_hand,
    MAX(CASE WHEN json_extract_scalar(data, '$.manual') = 'true' THEN 0 ELSE 1 END) AS on_timeout
  FROM audit_events
  WHERE type = 'escalated'
  GROUP BY checkpoint_id
)
SELECT
  g.environment,
  g.gate,
  COUNT(*) AS gated_requests,
  SUM(CASE WHEN e.checkpoint_id IS NULL THEN 0 ELSE 1 END) AS escalated,
  SUM(COALESCE(e.on_timeout, 0)) AS escalated_on_timeout,
  SUM(COALESCE(e.by_hand, 0)) AS escalated_by_hand,
  round(100 * CAST(SUM(CASE WHEN e.checkpoint_id IS NULL THEN 0 ELSE 1 END) AS double) / COUNT(*), 2)
    AS escalation_rate_pct
FROM gated g
LEFT JOIN escalations e ON e.checkpoint_id = g.checkpoint_id
GROUP BY g.environment, g.gate
ORDER BY g.environment, g.gate
