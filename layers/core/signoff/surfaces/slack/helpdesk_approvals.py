"""The helpdesk's approval form on Slack: the *Fill in the request* button opens a modal with the
class's fields (a person picker for the manager, a menu of the systems, text for the rest); its
submission is validated in the ack (Slack shows `response_action: errors` beside each field) and,
once valid, becomes the request's first checkpoint in a lazy listener. Translation only: the rules
are HelpdeskApprovals'."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.domain.errors import NotFound
from signoff.domain.helpdesk.config import FormInput
from signoff.domain.helpdesk.conversation import HELPDESK_ID_RE
from signoff.observability import logger
from signoff.ports import HelpdeskAction
from signoff.surfaces.slack.blocks import MAX_VIEW_TITLE, View, escape, plain, result_view, section
from signoff.surfaces.slack.identity import error_code
from signoff.usecases.helpdesk_approvals import ApprovalForm, FormRefused, HelpdeskApprovals

REQUEST_ACTION = f"helpdesk:{HelpdeskAction.REQUEST.value}"
VIEW_ID = "helpdesk:approval"
MAX_OPTION = 75  # Slack's limit on an option's text
MAX_INPUT = 500


def approval_view(form: ApprovalForm) -> View:
    """The modal: the bot's boundary, then one input per field (block id = action id = field name)."""
    blocks: list[dict[str, Any]] = [section(escape(form.boundary))]
    for f in form.fields:
        element: dict[str, Any]
        if f.input is FormInput.PERSON:
            element = {"type": "users_select", "action_id": f.name, "placeholder": plain("Choose a person", 150)}
        elif f.input is FormInput.SYSTEM:
            options = [{"text": plain(label, MAX_OPTION), "value": value} for value, label in form.systems]
            element = {"type": "static_select", "action_id": f.name, "options": options}
        else:
            element = {"type": "plain_text_input", "action_id": f.name, "max_length": MAX_INPUT}
        blocks.append(
            {
                "type": "input",
                "block_id": f.name,
                "label": plain(f.label[:1].upper() + f.label[1:], 2000),
                "optional": not f.required,
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": VIEW_ID,
        "private_metadata": form.conversation_id,
        "title": plain(form.title, MAX_VIEW_TITLE),
        "submit": plain("Send request", MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "blocks": blocks,
    }


def read_values(view: dict[str, Any]) -> dict[str, str | None]:
    """Field name -> the text typed, the user picked or the option chosen (None when empty)."""
    values: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        state = (actions or {}).get(block_id) or {}
        picked = state.get("selected_user") or (state.get("selected_option") or {}).get("value") or state.get("value")
        values[str(block_id)] = picked if isinstance(picked, str) else None
    return values


class HelpdeskApprovalListeners:
    def __init__(self, approvals: HelpdeskApprovals) -> None:
        self.approvals = approvals

    def open_form(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """The button: the modal, opened in the ack path (a trigger id lives 3 seconds)."""
        ack()
        action = (body.get("actions") or [{}])[0]
        conversation_id, user = str(action.get("value", "")), str((body.get("user") or {}).get("id") or "")
        if not HELPDESK_ID_RE.match(conversation_id):
            return
        try:
            form = self.approvals.form_for(conversation_id, user)
        except (FormRefused, NotFound) as exc:
            told = str(exc) if isinstance(exc, FormRefused) else "This conversation no longer exists."
            self._ephemeral(client, body, user, told)
            return
        try:
            client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=approval_view(form))
        except SlackApiError as exc:
            logger.warning("helpdesk form not opened", extra={"code": error_code(exc)})
        logger.info("helpdesk form opened", extra={"conversation_id": conversation_id, "user_id": user})

    def check(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The submission's ack: errors beside their fields, a refusal in place of the form, or close."""
        conversation_id, user = _submission(body, view)
        try:
            errors = self.approvals.check(conversation_id, user, read_values(view))
        except (FormRefused, NotFound) as exc:
            told = str(exc) if isinstance(exc, FormRefused) else "This conversation no longer exists."
            ack(response_action="update", view=result_view(told))
            return
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()

    def submit(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Lazy: keep the answers and create the first checkpoint (the ack validated them)."""
        conversation_id, user = _submission(body, view)
        try:
            errors = self.approvals.submit(conversation_id, user, read_values(view))
        except (FormRefused, NotFound):
            return  # the ack showed why
        if errors:  # changed between the ack and now (e.g. the directory): the form was closed
            logger.warning("helpdesk form refused after its ack", extra={"conversation_id": conversation_id})

    @staticmethod
    def _ephemeral(client: WebClient, body: dict[str, Any], user: str, text: str) -> None:
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if not channel:
            return
        try:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=container.get("thread_ts"), text=escape(text)
            )
        except SlackApiError as exc:
            logger.warning("helpdesk ephemeral not sent", extra={"code": error_code(exc)})


def _submission(body: dict[str, Any], view: dict[str, Any]) -> tuple[str, str]:
    conversation_id = str(view.get("private_metadata") or "")
    if not HELPDESK_ID_RE.match(conversation_id):
        conversation_id = "hd_" + "0" * 26  # not ours to read: NotFound, told as such
    return conversation_id, str((body.get("user") or {}).get("id") or "")


def register(app: App, listeners: HelpdeskApprovalListeners) -> None:
    """Wire the form's button and submission. Registered before the helpdesk's other buttons:
    bolt runs the first listener that matches, and theirs match every `helpdesk:` action."""

    def open_helpdesk_form(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        listeners.open_form(ack, body, client)

    def check_helpdesk_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        listeners.check(ack, body, view)

    def submit_helpdesk_form(body: dict[str, Any], view: dict[str, Any]) -> None:
        listeners.submit(body, view)

    app.action(REQUEST_ACTION)(open_helpdesk_form)
    app.view(VIEW_ID)(ack=check_helpdesk_form, lazy=[submit_helpdesk_form])
