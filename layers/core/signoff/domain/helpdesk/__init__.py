"""The helpdesk router: pure code that turns an employee's chat message into an explained triage
(redact, classify, retrieve, draft, confidence, route). Nothing here talks to Slack, AWS or the network;
the models sit behind the protocols of `models`, with embedded defaults built lazily once per container.

Import the submodules directly (`signoff.domain.helpdesk.router`): this package imports nothing at
load time, so a Lambda that never triages pays nothing for it."""
