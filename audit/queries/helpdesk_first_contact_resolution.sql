-- Helpdesk first-contact resolution (H5)
-- Per request class: questions the bot answered and the asker confirmed (Helpful, or Resolved by the
-- asker) without the conversation ever reaching a person. Unlike deflection, silence does not count:
-- only a confirmed answer is a resolution at first contact.
-- Target: over 30 % of all questions, over 60 % of answered ones.
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
),
confirmed AS (
  SELECT DISTINCT checkpoint_id
  FROM audit_events
  WHERE type IN ('helpdesk_feedback', 'helpdesk_resolved')
    AND json_extract_scalar(data, '$.by_asker') = 'true'
    AND (type = 'helpdesk_resolved' OR json_extract_scalar(data, '$.value') = 'helpful')
)
SELECT
  a.request_class,
  COUNT(*) AS questions,
  SUM(CASE WHEN a.route = 'answer' THEN 1 ELSE 0 END) AS answered,
  SUM(CASE WHEN a.route = 'answer' AND h.checkpoint_id IS NULL AND c.checkpoint_id IS NOT NULL THEN 1 ELSE 0 END)
    AS resolved_first_contact,
  round(100 * CAST(SUM(CASE WHEN a.route = 'answer' AND h.checkpoint_id IS NULL AND c.checkpoint_id IS NOT NULL
    THEN 1 ELSE 0 END) AS double) / COUNT(*), 2) AS fcr_pct,
  round(100 * CAST(SUM(CASE WHEN a.route = 'answer' AND h.checkpoint_id IS NULL AND c.checkpoint_id IS NOT NULL
    THEN 1 ELSE 0 END) AS double) / NULLIF(SUM(CASE WHEN a.route = 'answer' THEN 1 ELSE 0 END), 0), 2)
    AS fcr_of_answered_pct
FROM asked a
LEFT JOIN handed h ON h.checkpoint_id = a.checkpoint_id
LEFT JOIN confirmed c ON c.checkpoint_id = a.checkpoint_id
GROUP BY a.request_class
ORDER BY a.request_class
