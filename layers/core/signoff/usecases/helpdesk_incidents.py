"""Incidents: one thread per outage, however many people report it.

An incident report whose redacted text names an outage symptom and a set of systems has a symptom
signature (domain.helpdesk.incidents). The first such report claims the signature on the table with
a conditional write (so two reports at the same moment cannot both open an incident), is handed off
as usual (summary, the on-call paged, a ticket, a post in the incident channel) and then marks its
thread ready. A later report with the same signature, within `incident_collapse_window` of the last
report, joins that incident instead: no second ticket, no second page; its reporter gets a pointer
to the incident, and the report is relayed into the incident's thread.

A report can join before the opener's thread exists (the two arrive together). Each report is then
relayed exactly once, by whoever comes second: joining and marking the thread ready are both
conditional saves of the incident's conversation, so either the join sees the thread ready and
relays itself, or it leaves itself in `incident_pending` and marking ready relays it.

Only reports answered in a public thread open or join an incident: a DM or a slash command is
private, and its text is not for the incident channel. A resolved incident is replaced by the next
report, not joined."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from signoff.audit.events import EventType
from signoff.domain.errors import NotFound
from signoff.domain.helpdesk.config import HelpdeskConfig, Visibility
from signoff.domain.helpdesk.conversation import Conversation, ConversationState
from signoff.domain.helpdesk.incidents import collapse_until, subjects, symptom_signature
from signoff.observability import logger
from signoff.ports import ConversationRepository, HelpdeskAction, HelpdeskChat, HelpdeskReply

# What a step changes on a conversation and the audit events it writes (the service's _Step).
Change = tuple[dict[str, Any], list[tuple[EventType, str, dict[str, Any]]]]
Apply = Callable[[str, Callable[[Conversation], Change]], Conversation]
Post = Callable[[Conversation, str, list[HelpdeskAction]], Conversation]
CLAIM_ATTEMPTS = 3  # a resolved incident replaced while another report replaces it too: read again


def reported_publicly(conv: Conversation) -> bool:
    return conv.source not in ("dm", "command") and conv.triage.visibility is Visibility.PUBLIC_THREAD


class Incidents:
    def __init__(
        self, repo: ConversationRepository, chat: HelpdeskChat, config: HelpdeskConfig, apply: Apply, post: Post
    ) -> None:
        self.repo = repo
        self.chat = chat
        self.config = config
        self.apply = apply
        self.post = post

    def file(self, conv: Conversation, now: datetime) -> tuple[Conversation, bool]:
        """Claim the report's outage or join the open incident. (conversation, True) when it joined:
        nothing else to do; (conversation, False): hand it off (and call `opened` if it claimed)."""
        key = symptom_signature(conv.triage.question, self.config)
        if key is None or not reported_publicly(conv):
            return conv, False
        until = collapse_until(now, self.config)
        replacing: str | None = None
        for _ in range(CLAIM_ATTEMPTS):
            holder = self.repo.claim_incident(key, conv.id, now, until, replacing=replacing)
            if holder is None or holder == conv.id:
                return self.apply(conv.id, lambda _c: ({"incident_key": key}, [])), False
            try:
                incident = self.repo.get(holder)
            except NotFound:
                incident = None
            if incident is None or incident.state is ConversationState.RESOLVED:
                replacing = holder
                continue
            return self._join(conv, incident, key, until), True
        logger.warning("incident kept changing hands: a separate one", extra={"conversation_id": conv.id})
        return conv, False

    def opened(self, conv: Conversation) -> Conversation:
        """After the hand-off posted the incident: its thread is ready; relay reports that came early."""
        if conv.incident_key is None:
            return conv
        pending: list[str] = []

        def ready(current: Conversation) -> Change:
            pending[:] = current.incident_pending
            data = {
                "signature": current.incident_key,
                "subjects": subjects(current.triage.question, self.config.incident_collapse)
                if self.config.incident_collapse
                else [],
                "channel": current.incident_channel,
                "ts": current.incident_ts,
                "relayed_late": len(current.incident_pending),
            }
            return (
                {"incident_ready": True, "incident_pending": []},
                [(EventType.HELPDESK_INCIDENT_OPENED, "signoff", data)],
            )

        conv = self.apply(conv.id, ready)
        for report_id in pending:
            self._relay(conv, self.repo.get(report_id))
        return conv

    def _join(self, conv: Conversation, incident: Conversation, key: str, until: datetime) -> Conversation:
        self.repo.extend_incident(key, incident.id, until)

        def record(current: Conversation) -> Change:
            data = {"conversation": conv.id, "channel": conv.channel, "relayed": current.incident_ready}
            updates = {} if current.incident_ready else {"incident_pending": [*current.incident_pending, conv.id]}
            return updates, [(EventType.HELPDESK_INCIDENT_REPORT, "signoff", data)]

        incident = self.apply(incident.id, record)
        if conv.id not in incident.incident_pending:
            self._relay(incident, conv)
        link = (
            self.chat.permalink(incident.incident_channel, incident.incident_ts)
            if incident.incident_channel and incident.incident_ts
            else None
        )
        where = link or f"#{self.config.incident_channel.name}"
        text = (
            f"This looks like the outage already reported: {where}\n"
            "Your report was added to that incident and its responders have it; updates are posted there.\n"
            "Not the same problem? Choose *Talk to a human*."
        )
        conv = self.post(conv, text, [HelpdeskAction.HUMAN])
        data = {"incident": incident.id, "signature": key, "ticket_key": incident.ticket_key}
        joined: Change = ({"incident_of": incident.id}, [(EventType.HELPDESK_INCIDENT_JOINED, "signoff", data)])
        conv = self.apply(conv.id, lambda _c: joined)
        logger.info("helpdesk incident report collapsed", extra={"conversation_id": conv.id, "incident": incident.id})
        return conv

    def _relay(self, incident: Conversation, report: Conversation) -> None:
        """The report, redacted, in the incident's thread (a public report: its text was public already)."""
        if not (incident.incident_channel and incident.incident_ts):
            return
        channel = self.config.channel(report.channel)
        where = f"#{channel.name}" if channel else "another channel"
        text = f"Another report of this, in {where}: {report.triage.question}"
        self.chat.reply(
            incident.incident_channel, incident.incident_ts, HelpdeskReply(conversation_id=incident.id, text=text)
        )
