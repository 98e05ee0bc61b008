-- Helpdesk helpfulness (H7)
-- Per request class: Helpful / Not helpful votes on the bot's answers (helpdesk_feedback; one per
-- person and conversation, the latest counts), the askers' own votes apart, and the helpful share.
-- Target: over 80 % helpful, from askers.
WITH votes AS (
  SELECT
    checkpoint_id,
    actor,
    json_extract_scalar(data, '$.class') AS request_class,
    json_extract_scalar(data, '$.value') AS vote,
    json_extract_scalar(data, '$.by_asker') AS by_asker,
    seq
  FROM audit_events
  WHERE type = 'helpdesk_feedback'
),
latest AS (
  SELECT v.*
  FROM votes v
  WHERE v.seq = (SELECT MAX(w.seq) FROM votes w WHERE w.checkpoint_id = v.checkpoint_id AND w.actor = v.actor)
)
SELECT
  request_class,
  COUNT(*) AS votes,
  SUM(CASE WHEN vote = 'helpful' THEN 1 ELSE 0 END) AS helpful,
  SUM(CASE WHEN vote = 'not_helpful' THEN 1 ELSE 0 END) AS not_helpful,
  round(100 * CAST(SUM(CASE WHEN vote = 'helpful' THEN 1 ELSE 0 END) AS double) / COUNT(*), 2) AS helpful_pct,
  SUM(CASE WHEN by_asker = 'true' THEN 1 ELSE 0 END) AS asker_votes,
  round(100 * CAST(SUM(CASE WHEN by_asker = 'true' AND vote = 'helpful' THEN 1 ELSE 0 END) AS double)
    / NULLIF(SUM(CASE WHEN by_asker = 'true' THEN 1 ELSE 0 END), 0), 2) AS asker_helpful_pct
FROM latest
GROUP BY request_class
ORDER BY request_class
