-- Helpdesk resolution time (H6)
-- Per request class: conversations marked Resolved (helpdesk_resolved, by the asker or the person
-- who claimed it) and p50 / p90 seconds from the question to the first resolution, split by whether
-- a person was involved (a helpdesk_handed_off before it).
-- Target: p90 under 1 day (86400 s) for hand-offs.
WITH asked AS (
  SELECT checkpoint_id, json_extract_scalar(data, '$.class') AS request_class, from_iso8601_timestamp("at") AS asked_at
  FROM audit_events
  WHERE type = 'helpdesk_triaged'
),
resolved AS (
  SELECT checkpoint_id, MIN(from_iso8601_timestamp("at")) AS resolved_at
  FROM audit_events
  WHERE type = 'helpdesk_resolved'
  GROUP BY checkpoint_id
),
handed AS (
  SELECT DISTINCT checkpoint_id
  FROM audit_events
  WHERE type = 'helpdesk_handed_off'
),
timed AS (
  SELECT
    a.request_class,
    CASE WHEN h.checkpoint_id IS NULL THEN 0 ELSE 1 END AS by_person,
    CAST(date_diff('millisecond', a.asked_at, r.resolved_at) AS double) / 1000 AS seconds
  FROM asked a
  JOIN resolved r ON r.checkpoint_id = a.checkpoint_id
  LEFT JOIN handed h ON h.checkpoint_id = a.checkpoint_id
)
SELECT
  request_class,
  COUNT(*) AS resolved,
  approx_percentile(seconds, 0.5) AS p50_seconds,
  approx_percentile(seconds, 0.9) AS p90_seconds,
  SUM(by_person) AS resolved_with_a_person,
  approx_percentile(CASE WHEN by_person = 1 THEN seconds END, 0.9) AS with_person_p90_seconds
FROM timed
GROUP BY request_class
ORDER BY request_class
