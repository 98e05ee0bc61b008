-- Approval traffic (M8)
-- Requests per day (the day of the requested event, UTC) and the gate each got: how much of the
-- traffic reaches people at all. A rising hard share is worth a look at the policy.
-- Target: none (it varies by team); watch the trend and the share of human gates.
SELECT
  dt AS day,
  COUNT(*) AS requests,
  SUM(CASE WHEN gate = 'auto' THEN 1 ELSE 0 END) AS auto,
  SUM(CASE WHEN gate = 'soft' THEN 1 ELSE 0 END) AS soft,
  SUM(CASE WHEN gate = 'hard' THEN 1 ELSE 0 END) AS hard,
  COUNT(DISTINCT requester) AS requesters
FROM audit_events
WHERE type = 'requested'
GROUP BY dt
ORDER BY dt
