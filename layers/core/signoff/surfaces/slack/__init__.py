"""The Slack surface of Signoff's approval gates: Block Kit cards and modals (`blocks`), the
Chat port on the Web API (`notifier`), who clicked (`identity`), modal input rules (`forms`) and
the bolt app behind POST /v1/slack/events (`app`).

Nothing here imports slack_sdk or slack_bolt at package import: functions that never talk to Slack
do not pay for them."""
