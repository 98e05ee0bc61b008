-- Unauthorized approval attempts (M6)
-- Refused clicks that were not allowed at all: someone who is not an eligible approver (or
-- unknown to the directory), or the requester trying to approve their own request (separation
-- of duties). Late, duplicate or comment-less clicks are refused too but are not listed here.
-- One row per person (or chat handle) and refusal; no rows means the target is met.
-- Target: 0.
SELECT
  actor,
  refusal,
  COUNT(*) AS attempts,
  COUNT(DISTINCT checkpoint_id) AS checkpoints,
  MIN("at") AS first_at,
  MAX("at") AS last_at
FROM audit_events
WHERE type = 'refused' AND unauthorized = true
GROUP BY actor, refusal
ORDER BY attempts DESC, actor, refusal
