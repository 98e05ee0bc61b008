-- Approval rate (M2)
-- Share of decided requests that were approved, by environment and gate, with how the others
-- ended. One decision per checkpoint: its decided event, or the cancelled event when the
-- requester withdrew it.
-- A low rate on a routine gate points at friction, or at a policy that sends poor requests to people.
-- Target: above 90 % for routine operations (auto and soft gates).
SELECT
  environment,
  gate,
  COUNT(*) AS decisions,
  SUM(CASE WHEN status = 'APPROVED' THEN 1 ELSE 0 END) AS approved,
  SUM(CASE WHEN status = 'DENIED' THEN 1 ELSE 0 END) AS denied,
  SUM(CASE WHEN status = 'EXPIRED' THEN 1 ELSE 0 END) AS expired,
  SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled,
  round(100 * CAST(SUM(CASE WHEN status = 'APPROVED' THEN 1 ELSE 0 END) AS double) / COUNT(*), 2) AS approval_rate_pct
FROM audit_events
WHERE type IN ('decided', 'cancelled')
GROUP BY environment, gate
ORDER BY environment, gate
