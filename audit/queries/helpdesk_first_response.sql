-- Helpdesk time to first response (H2)
-- Per request class, p50 and p90 in seconds: from the question (helpdesk_triaged) to the bot's
-- first reply (the first helpdesk_posted), and, for conversations handed to a person, from the
-- hand-off to the first claim (helpdesk_claimed): how long people wait for a human.
-- Percentiles: Athena's approx_percentile is approximate; DuckDB computes the exact nearest rank.
-- Target: bot p90 under 5 s; human p90 under 30 minutes (1800 s).
WITH asked AS (
  SELECT checkpoint_id, json_extract_scalar(data, '$.class') AS request_class, from_iso8601_timestamp("at") AS asked_at
  FROM audit_events
  WHERE type = 'helpdesk_triaged'
),
first_post AS (
  SELECT checkpoint_id, MIN(from_iso8601_timestamp("at")) AS posted_at
  FROM audit_events
  WHERE type = 'helpdesk_posted'
  GROUP BY checkpoint_id
),
first_handoff AS (
  SELECT checkpoint_id, MIN(from_iso8601_timestamp("at")) AS handed_at
  FROM audit_events
  WHERE type = 'helpdesk_handed_off'
  GROUP BY checkpoint_id
),
first_claim AS (
  SELECT checkpoint_id, MIN(from_iso8601_timestamp("at")) AS claimed_at
  FROM audit_events
  WHERE type = 'helpdesk_claimed'
  GROUP BY checkpoint_id
),
timed AS (
  SELECT
    a.request_class,
    CAST(date_diff('millisecond', a.asked_at, p.posted_at) AS double) / 1000 AS bot_seconds,
    CAST(date_diff('millisecond', h.handed_at, c.claimed_at) AS double) / 1000 AS human_seconds,
    CASE WHEN h.checkpoint_id IS NULL THEN 0 ELSE 1 END AS handed_off
  FROM asked a
  LEFT JOIN first_post p ON p.checkpoint_id = a.checkpoint_id
  LEFT JOIN first_handoff h ON h.checkpoint_id = a.checkpoint_id
  LEFT JOIN first_claim c ON c.checkpoint_id = a.checkpoint_id
)
SELECT
  request_class,
  COUNT(*) AS questions,
  COUNT(bot_seconds) AS bot_replies,
  approx_percentile(bot_seconds, 0.5) AS bot_p50_seconds,
  approx_percentile(bot_seconds, 0.9) AS bot_p90_seconds,
  SUM(handed_off) AS handed_off,
  COUNT(human_seconds) AS claimed,
  approx_percentile(human_seconds, 0.5) AS human_p50_seconds,
  approx_percentile(human_seconds, 0.9) AS human_p90_seconds
FROM timed
GROUP BY request_class
ORDER BY request_class
