-- Helpdesk escalation rate (H4)
-- Per request class: the share of questions that reached a person (helpdesk_handed_off), at once
-- (the router chose hand-off, ticket or incident) or later (an answer or an approval the asker took
-- to a person with Talk to a human). A conversation counts once however often it was handed off.
-- Target: under 30 % for how_to; hand-offs of out_of_scope questions are expected (100 %).
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
  SUM(CASE WHEN h.checkpoint_id IS NULL THEN 0 ELSE 1 END) AS escalated,
  SUM(CASE WHEN h.checkpoint_id IS NOT NULL AND a.route IN ('handoff', 'ticket', 'incident') THEN 1 ELSE 0 END)
    AS escalated_at_once,
  SUM(CASE WHEN h.checkpoint_id IS NOT NULL AND a.route IN ('answer', 'approval') THEN 1 ELSE 0 END)
    AS escalated_later,
  round(100 * CAST(SUM(CASE WHEN h.checkpoint_id IS NULL THEN 0 ELSE 1 END) AS double) / COUNT(*), 2)
    AS escalation_rate_pct
FROM asked a
LEFT JOIN handed h ON h.checkpoint_id = a.checkpoint_id
GROUP BY a.request_class
ORDER BY a.request_class
