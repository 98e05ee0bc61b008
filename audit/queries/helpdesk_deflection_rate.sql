-- Helpdesk deflection rate (H1)
-- Per request class: questions the bot triaged, those it answered itself, and those deflected: answered
-- and never handed to a person afterwards (no helpdesk_handed_off, not even by Talk to a human).
-- A conversation is one question (checkpoint_id hd_...); its class and route are the router's, read
-- from the helpdesk_triaged event's data.
-- Target: over 40 % of all questions, over 80 % of how_to questions.
WITH asked AS (
  SELECT
    checkpoint_id,
    json_extract_scalar(data, '$.class') AS request_class,
    json_extract_scalar(data, '$.route') AS route
  FROM audit_events
  WHERE type = 'helpdesk_triaged'
),
handed AS (
  SELECT DISTINCT checkpoint_id
  FROM audit_events
  WHERE type = 'helpdesk_handed_off'
)
SELECT
  a.request_class,
  COUNT(*) AS questions,
  SUM(CASE WHEN a.route = 'answer' THEN 1 ELSE 0 END) AS answered,
  SUM(CASE WHEN a.route = 'answer' AND h.checkpoint_id IS NULL THEN 1 ELSE 0 END) AS deflected,
  round(100 * CAST(SUM(CASE WHEN a.route = 'answer' AND h.checkpoint_id IS NULL THEN 1 ELSE 0 END) AS double)
    / COUNT(*), 2) AS deflection_rate_pct
FROM asked a
LEFT JOIN handed h ON h.checkpoint_id = a.checkpoint_id
GROUP BY a.request_class
ORDER BY a.request_class
