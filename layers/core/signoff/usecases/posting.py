"""Posting to every chat surface of a deployment: where a checkpoint's recipients are on each
surface, one post per destination (one surface down never silences the others), and the messages
already posted, to re-render in place."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from signoff.domain.cards import Card, build_card
from signoff.domain.models import Checkpoint, MessageRef
from signoff.domain.routing import Recipients
from signoff.observability import logger
from signoff.ports import Chat

Post = Callable[[Chat, str | None, str | None], MessageRef | None]  # (chat, channel, person) -> ref
CARDS = ("card", "escalation")  # escalation notices carry buttons too: they are re-rendered with the cards


def post_everywhere(chats: Sequence[Chat], where: Recipients, post: Post) -> tuple[list[MessageRef], list[Exception]]:
    """Post to each channel (as the surface names it) and each person, on every surface. Returns
    what got through and what failed; a recipient the surface cannot reach is neither."""
    refs: list[MessageRef] = []
    failures: list[Exception] = []
    for chat in chats:
        channels = [t for c in where.channels if (t := getattr(c, chat.surface, None))]
        targets: list[tuple[str | None, str | None]] = [(t, None) for t in channels]
        targets += [(None, person) for person in where.direct]
        for channel, person in targets:
            try:
                ref = post(chat, channel, person)
            except Exception as exc:  # noqa: BLE001 - one surface down must not silence the others
                logger.warning("posting failed", extra={"surface": chat.surface, "error": type(exc).__name__})
                failures.append(exc)
                continue
            refs += [ref] if ref else []
    return refs, failures


def posted(chats: Sequence[Chat], cp: Checkpoint, kinds: tuple[str, ...]) -> list[tuple[Chat, MessageRef]]:
    """The checkpoint's messages of these kinds, each with the surface it lives on."""
    return [(chat, ref) for chat in chats for ref in cp.messages if ref.surface == chat.surface and ref.kind in kinds]


def rerender(chats: Sequence[Chat], cp: Checkpoint, kinds: tuple[str, ...] = CARDS, card: Card | None = None) -> None:
    """Update the checkpoint's cards (and escalation notices) in place from its current state."""
    card = card or build_card(cp)
    for chat, ref in posted(chats, cp, kinds):
        chat.update_card(ref, card)
