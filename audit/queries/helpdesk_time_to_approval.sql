-- Helpdesk time to approval (H3)
-- Per request class, for questions the router sent to approval: how many got a decision on their
-- approval steps (helpdesk_approval_decided, one per step's checkpoint), how many were approved at
-- every step, and p50 / p90 seconds from the question to the last step's approval.
-- A conversation with any step denied, expired or cancelled is decided but not approved.
-- Target: p90 under 4 hours (14400 s) for access requests.
WITH asked AS (
  SELECT checkpoint_id, json_extract_scalar(data, '$.class') AS request_class, from_iso8601_timestamp("at") AS asked_at
  FROM audit_events
  WHERE type = 'helpdesk_triaged' AND json_extract_scalar(data, '$.route') = 'approval'
),
decisions AS (
  SELECT
    checkpoint_id,
    MAX(from_iso8601_timestamp("at")) AS last_decided_at,
    SUM(CASE WHEN json_extract_scalar(data, '$.status') = 'APPROVED' THEN 0 ELSE 1 END) AS not_approved
  FROM audit_events
  WHERE type = 'helpdesk_approval_decided'
  GROUP BY checkpoint_id
),
timed AS (
  SELECT
    a.request_class,
    CASE WHEN d.checkpoint_id IS NULL THEN 0 ELSE 1 END AS decided,
    CASE WHEN d.not_approved = 0 THEN 1 ELSE 0 END AS approved,
    CASE WHEN d.not_approved = 0
      THEN CAST(date_diff('millisecond', a.asked_at, d.last_decided_at) AS double) / 1000 END AS approval_seconds
  FROM asked a
  LEFT JOIN decisions d ON d.checkpoint_id = a.checkpoint_id
)
SELECT
  request_class,
  COUNT(*) AS approval_requests,
  SUM(decided) AS decided,
  SUM(approved) AS approved,
  approx_percentile(approval_seconds, 0.5) AS p50_seconds,
  approx_percentile(approval_seconds, 0.9) AS p90_seconds
FROM timed
GROUP BY request_class
ORDER BY request_class
