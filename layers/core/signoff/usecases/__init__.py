"""The use cases: intake, decisions from chat, the approval workflow's steps, follow-ups after a click,
how a decision leaves Signoff, embedded checkpoints and the sweeper. They see only `signoff.ports`."""
