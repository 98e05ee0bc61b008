-- Top approvers
-- Who carries the approval load: votes per person (approvals and denials, vetoes included), on
-- how many checkpoints, and their median response time (request to vote). A few names carrying
-- most votes is a coverage risk; slow medians explain approval latency.
-- Target: none; spread the load and keep each median well inside the gate's deadline.
WITH requested AS (
  SELECT checkpoint_id, "at" AS requested_at
  FROM audit_events
  WHERE type = 'requested'
),
ballots AS (
  SELECT
    v.actor AS approver,
    json_extract_scalar(v.data, '$.name') AS approver_name,
    v.vote,
    v.checkpoint_id,
    date_diff('second', from_iso8601_timestamp(r.requested_at), from_iso8601_timestamp(v."at")) AS response_seconds
  FROM audit_events v
  JOIN requested r ON r.checkpoint_id = v.checkpoint_id
  WHERE v.type = 'voted'
)
SELECT
  approver,
  MAX(approver_name) AS name,
  COUNT(*) AS votes,
  SUM(CASE WHEN vote = 'approve' THEN 1 ELSE 0 END) AS approvals,
  SUM(CASE WHEN vote = 'deny' THEN 1 ELSE 0 END) AS denials,
  COUNT(DISTINCT checkpoint_id) AS checkpoints,
  approx_percentile(response_seconds, 0.5) AS p50_response_seconds
FROM ballots
GROUP BY approver
ORDER BY votes DESC, approver
LIMIT 10
