-- Audit completeness (M10)
-- Share of decisions (decided or cancelled events) whose record is complete: every field a
-- decision carries (status, decided_by, reason, gate, risk, score, environment, policy_version,
-- requested_at, latency_seconds, approvers), who and when, its hash chain link, and the
-- checkpoint's requested event in the archive.
-- Target: 100 %.
WITH requested AS (
  SELECT DISTINCT checkpoint_id
  FROM audit_events
  WHERE type = 'requested'
),
decisions AS (
  SELECT
    e.checkpoint_id,
    CASE WHEN r.checkpoint_id IS NULL THEN 0 ELSE 1 END AS has_request,
    CASE
      WHEN e.status IS NOT NULL
        AND e.decided_by IS NOT NULL AND e.decided_by <> ''
        AND e.reason IS NOT NULL AND e.reason <> ''
        AND e.gate IS NOT NULL
        AND e.risk IS NOT NULL
        AND e.score IS NOT NULL
        AND e.environment IS NOT NULL
        AND e.policy_version IS NOT NULL
        AND e.requested_at IS NOT NULL
        AND e.latency_seconds IS NOT NULL
        AND json_extract(e.data, '$.approvers') IS NOT NULL
        AND e.actor IS NOT NULL AND e.actor <> ''
        AND e."at" IS NOT NULL
        AND e.prev_hash IS NOT NULL
        AND e.hash IS NOT NULL
      THEN 1
      ELSE 0
    END AS has_fields
  FROM audit_events e
  LEFT JOIN requested r ON r.checkpoint_id = e.checkpoint_id
  WHERE e.type IN ('decided', 'cancelled')
)
SELECT
  COUNT(*) AS decisions,
  COALESCE(SUM(has_fields * has_request), 0) AS complete,
  COALESCE(SUM(1 - has_fields), 0) AS missing_fields,
  COALESCE(SUM(1 - has_request), 0) AS missing_request,
  round(100 * CAST(COALESCE(SUM(has_fields * has_request), 0) AS double) / NULLIF(COUNT(*), 0), 2)
    AS completeness_pct
FROM decisions
