-- Stalled approvals (M3)
-- Checkpoints still waiting although their final deadline has passed: the requested event names
-- a deadline in the past and no decided or cancelled event exists. The approval workflow should
-- have applied the timeout rule by then, so each one is a stuck workflow to look at.
-- Share of all gated (soft or hard) requests; stalled_checkpoints lists them, oldest deadline first.
-- Target: under 1 % (ideally none).
WITH requested AS (
  SELECT checkpoint_id, deadline
  FROM audit_events
  WHERE type = 'requested' AND deadline IS NOT NULL
),
decided AS (
  SELECT DISTINCT checkpoint_id
  FROM audit_events
  WHERE type IN ('decided', 'cancelled')
),
waiting AS (
  SELECT
    r.checkpoint_id,
    r.deadline,
    CASE WHEN d.checkpoint_id IS NULL THEN 1 ELSE 0 END AS pending,
    CASE
      WHEN d.checkpoint_id IS NULL AND from_iso8601_timestamp(r.deadline) < current_timestamp THEN 1
      ELSE 0
    END AS stalled
  FROM requested r
  LEFT JOIN decided d ON d.checkpoint_id = r.checkpoint_id
)
SELECT
  COUNT(*) AS gated_requests,
  COALESCE(SUM(pending), 0) AS pending,
  COALESCE(SUM(stalled), 0) AS stalled,
  round(100 * CAST(COALESCE(SUM(stalled), 0) AS double) / NULLIF(COUNT(*), 0), 2) AS stalled_pct,
  MAX(CASE WHEN stalled = 1 THEN date_diff('minute', from_iso8601_timestamp(deadline), current_timestamp) END)
    AS oldest_overdue_minutes,
  array_agg(checkpoint_id ORDER BY deadline) FILTER (WHERE stalled = 1) AS stalled_checkpoints
FROM waiting
