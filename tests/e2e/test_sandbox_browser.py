"""The Slack sandbox page (/sandbox) in a real browser: Debian's headless Chromium driven by
Selenium against a local stack of its own (fresh synthesis, fast test policy).

A two-person hard gate, clicked through the page as the directory's people: the requester is
refused (separation of duties, shown as an ephemeral), Carol approves through the comment modal
(a blank comment comes back as Slack's `response_action: errors` next to the field), Dave's
approval decides it, every card turns into the outcome without buttons, and the API agrees. Text
from the requester is shown as text, never as markup.

Needs /usr/bin/chromium and /usr/bin/chromedriver (apt packages `chromium`, `chromium-driver`);
the module is skipped without them. Selenium Manager is never used: the driver path is explicit."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from tests.e2e.conftest import CEILING, ROOT, LocalSignoff, expiring_soft, start_local

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "browser test needs Debian's Chromium: apt-get install -y chromium chromium-driver "
        f"({CHROMIUM} or {CHROMEDRIVER} is missing)",
        allow_module_level=True,
    )
pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

FAST_POLICY = ROOT / "tests" / "e2e" / "policy-fast.yaml"
SCREENSHOT = Path("/tmp/sandbox.png")  # the end state; two more beside it show the notice and the modal
WAIT = CEILING  # a ceiling for polling, never a deadline
APPROVE = "signoff:approve"
T = TypeVar("T")


# -- the stack and the browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    """The README's local stack, but of its own: the page shows every card of the fake workspace,
    so no other test's cards."""
    yield from start_local(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1600,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(CEILING)  # ceilings: Chromium is slow to answer on a busy machine
    driver.set_script_timeout(CEILING)
    try:
        yield driver
    finally:
        driver.quit()


# -- driving the page ----------------------------------------------------------------------------


class SandboxPage:
    """The page re-renders the workspace whenever the fake Slack changes (it polls every 1.5 s),
    so elements are looked up afresh for every step, and a step is retried if its element was
    replaced under it."""

    def __init__(self, driver: WebDriver, signoff: LocalSignoff) -> None:
        self.driver = driver
        self.signoff = signoff

    def open(self) -> None:
        self.driver.get(self.signoff.url + "/sandbox")
        self.until(lambda: self.find('[data-testid="acting-as"] option'), "the directory in the Acting as list")

    def until(self, check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
        """`check()` until it returns something other than None or False."""
        ignored = (StaleElementReferenceException, NoSuchElementException, ElementClickInterceptedException)
        wait = WebDriverWait(self.driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored)

        def done(_: WebDriver) -> T | Literal[False]:
            value = check()
            return False if value is None or value is False else value

        return wait.until(done, f"timed out after {timeout}s waiting for {what}")

    def find(self, css: str, root: WebElement | None = None) -> WebElement:
        return (root or self.driver).find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    # -- who is acting

    def acting_as(self) -> str:
        return str(Select(self.find('[data-testid="acting-as"]')).first_selected_option.get_attribute("value"))

    def act_as(self, person: str) -> None:
        Select(self.find('[data-testid="acting-as"]')).select_by_value(person)
        assert self.acting_as() == person

    # -- cards

    def card(self, channel: str, checkpoint_id: str, ts: str) -> str:
        return f'[data-testid="channel-{channel}"] [data-testid="card-{checkpoint_id}"][data-ts="{ts}"]'

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def click(self, css: str, what: str) -> None:
        def clicked() -> bool:
            element = self.find(css)
            # Centred first: the page's sticky top bar would take a click at the viewport's top edge.
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()
            return True

        self.until(clicked, what)

    def card_shows(self, css: str, *words: str) -> str:
        def shown() -> str | None:
            text = self.text(css)
            return text if all(w in text for w in words) else None

        return self.until(shown, f"{css} to show {words}")

    # -- the modal

    def modal(self) -> WebElement:
        def shown() -> WebElement | None:
            modal = self.find('[data-testid="modal"]')
            return modal if modal.is_displayed() else None

        return self.until(shown, "the modal")

    def modal_closed(self) -> None:
        self.until(lambda: not self.finds('[data-testid="modal"]') or None, "the modal to close")

    def shoot(self, name: str) -> None:
        self.driver.save_screenshot(str(SCREENSHOT.with_name(f"{SCREENSHOT.stem}-{name}.png")))

    def fill(self, block_id: str, text: str) -> None:
        field = self.find(f'[data-testid="modal"] [data-testid="field-{block_id}"]')
        field.clear()
        field.send_keys(text)


def dm_card_ts(signoff: LocalSignoff, channel: str, checkpoint_id: str) -> str:
    """The ts of the checkpoint's card in a channel (the first one: an escalation notice may follow)."""
    messages = signoff.call("GET", "/sandbox/api/state").body["channels"].get(channel, [])
    found = sorted(m["ts"] for m in messages if checkpoint_id in json.dumps(m["blocks"]))
    assert found, f"no card for {checkpoint_id} in {channel}"
    return str(found[0])


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / "api" / f"checkpoint-{name}.json").read_text())
    return data


def create(signoff: LocalSignoff, body: dict[str, Any]) -> str:
    reply = signoff.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": f"sandbox-{uuid.uuid4()}"})
    assert reply.status == 202, reply.body
    return str(reply.body["id"])


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
    return value


# -- the scenario ----------------------------------------------------------------------------------


def test_two_person_hard_gate_clicked_through_the_sandbox_page(stack: LocalSignoff, browser: webdriver.Chrome) -> None:
    page = SandboxPage(browser, stack)
    # A 2-of-N hard gate: approvers bob, carol, dave, grace; requester alice; sensitive, so the
    # cards go to DMs; comment required. Its deadline is 60 s away under the fast policy.
    cp = create(stack, sample("hard"))
    hostile = post_hostile_soft_gate(stack)
    dms = ("D0BOB", "D0CAROL", "D0DAVE", "D0GRACE")
    wait_for(
        lambda: all(stack.call("GET", "/sandbox/api/state").body["channels"].get(c) for c in dms) or None, "the DMs"
    )
    bob, carol, dave = (dm_card_ts(stack, channel, cp) for channel in ("D0BOB", "D0CAROL", "D0DAVE"))

    page.open()
    page.until(lambda: page.find(page.card("D0BOB", cp, bob)), "Bob's card")
    # Acting as: the directory with roles; by default the first approver (Bob), not the requester.
    labels = [o.text for o in Select(page.find('[data-testid="acting-as"]')).options]
    assert "Carol Diaz · release-manager" in labels and "Alice Martin" in labels
    assert page.acting_as() == "bob@example.com"
    assert "Only visible to you" not in browser.find_element(By.TAG_NAME, "body").text

    # The requester may not approve: the refusal comes back as an ephemeral, only to her.
    page.act_as("alice@example.com")
    page.click(f'{page.card("D0BOB", cp, bob)} [data-testid="btn-{APPROVE}"]', "Approve on Bob's card as Alice")
    # Read through card_shows: the page re-renders as it polls, so a found element may be replaced.
    page.card_shows(
        '[data-testid="channel-D0BOB"] [data-testid="ephemeral"]', "Only visible to you", "Separation of duties"
    )
    assert not page.finds('[data-testid="modal"]')
    page.shoot("ephemeral")

    # Carol: Approve opens the comment modal; a blank comment is refused by the handler next to
    # the field (Slack's response_action: errors); with a comment the vote counts.
    page.act_as("carol@example.com")
    assert not page.finds('[data-testid="ephemeral"]'), "Alice's ephemeral is not Carol's to see"
    page.click(f'{page.card("D0CAROL", cp, carol)} [data-testid="btn-{APPROVE}"]', "Approve as Carol")
    page.modal()
    page.card_shows('[data-testid="modal"]', "Approve with comment", "Acting as Carol Diaz")
    assert page.find('[data-testid="field-comment"]').tag_name == "textarea"
    page.fill("comment", "   ")
    page.click('[data-testid="modal-submit"]', "Submit (blank comment)")
    error = page.until(lambda: page.text('[data-testid="error-comment"]') or None, "the error next to the comment")
    assert "comment is required" in error
    assert page.find('[data-testid="field-comment"]').get_attribute("aria-invalid") == "true"
    page.shoot("modal")
    page.fill("comment", "Migration window agreed with the on-call DBA.")
    page.click('[data-testid="modal-submit"]', "Submit as Carol")
    page.modal_closed()
    page.card_shows(page.card("D0CAROL", cp, carol), "1 of 2 approvals", "Carol Diaz", "(edited)")

    # Dave's approval is the second: the gate is decided, and every card says so without buttons.
    page.act_as("dave@example.com")
    page.click(f'{page.card("D0DAVE", cp, dave)} [data-testid="btn-{APPROVE}"]', "Approve as Dave")
    page.modal()
    page.fill("comment", "Canary dashboard is green; go.")
    page.click('[data-testid="modal-submit"]', "Submit as Dave")
    page.modal_closed()
    for channel, ts in (("D0DAVE", dave), ("D0CAROL", carol), ("D0BOB", bob)):
        page.card_shows(page.card(channel, cp, ts), "Approved")
        assert not page.finds(f'{page.card(channel, cp, ts)} [data-testid^="btn-"]'), f"buttons left on {channel}"
    assert stack.call("GET", f"/v1/checkpoints/{cp}").body["status"] == "APPROVED"

    # A decided card is summed up; its full text is one click away.
    page.click(f'{page.card("D0DAVE", cp, dave)} [data-testid="toggle-card"]', "Show the full card")
    page.card_shows(page.card("D0DAVE", cp, dave), "Why this score", "Evidence", "Dave Okafor")

    check_requester_text_is_never_markup(page, hostile)

    browser.execute_script("window.scrollTo(0, 0)")
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1600, min(max(height, 1000), 4000))
    time.sleep(0.3)
    assert browser.save_screenshot(str(SCREENSHOT))
    # No script error, no refused resource, no CSP violation on the way.
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    severe = [e for e in console if e["level"] == "SEVERE"]
    assert not severe, severe


HOSTILE = '<img src=x onerror="window.__pwned=1"> & <script>window.__pwned=2</script> <b>bold?</b>'


def post_hostile_soft_gate(stack: LocalSignoff) -> str:
    """A soft gate nobody vetoes (veto-5s, fail-open: decided while the rest runs) whose summary is
    full of markup."""
    body = expiring_soft(sample("soft"))
    body["summary"] = f"Restart the worker pool {HOSTILE}"
    return create(stack, body)


def check_requester_text_is_never_markup(page: SandboxPage, cp: str) -> None:
    """The summary is shown as the characters it is: no element, no script run."""
    css = f'[data-testid="card-{cp}"]'
    page.until(lambda: page.find(f'{css} [data-testid="toggle-card"]'), "the soft gate's outcome")
    page.click(f'{css} [data-testid="toggle-card"]', "Show the full card")
    text = page.card_shows(css, "Restart the worker pool")
    assert HOSTILE in text, text
    card = page.find(css)
    assert not card.find_elements(By.CSS_SELECTOR, "img, script, b")
    assert page.driver.execute_script("return window.__pwned === undefined")


# -- the same gate on Teams ------------------------------------------------------------------------

TEAMS_RELEASE = "19:release@thread.tacv2"


@pytest.fixture(scope="module")
def teams_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    """A stack with the Teams bot: every route's card goes to its Slack and its Teams channel."""
    yield from start_local(
        tmp_path_factory, SIGNOFF_TEAMS="1", SIGNOFF_ROUTING=str(ROOT / "tests" / "e2e" / "routing-teams.yaml")
    )


def test_teams_card_clicked_through_the_sandbox_page(teams_stack: LocalSignoff, browser: webdriver.Chrome) -> None:
    page = SandboxPage(browser, teams_stack)
    # The two-person gate, not sensitive: posted to the release channel on both surfaces.
    body = sample("hard")
    body["risk"]["data_sensitivity"] = "internal"
    cp = create(teams_stack, body)

    def teams_card() -> str | None:
        teams = teams_stack.call("GET", "/sandbox/api/state").body.get("teams") or {}
        activities = (teams.get("conversations") or {}).get(TEAMS_RELEASE, [])
        return next((str(a["id"]) for a in activities if cp in json.dumps(a.get("card"))), None)

    activity = wait_for(teams_card, "the Teams card")
    card = f'[data-testid="teams-conversation-{TEAMS_RELEASE}"] [data-testid="teams-card-{activity}"]'
    page.open()
    page.card_shows(card, "Deploy service-api v2.4.1", "0 of 2 approvals", "Why this score")
    assert page.find(f'{card} a[href^="https://git.example.com/"]').text == "Diff"

    def approve(person: str, comment: str) -> None:
        page.act_as(person)
        page.click(f'{card} [data-testid="teams-show-approve"]', f"Approve (show card) as {person}")
        field = page.until(lambda: page.find(f'{card} [data-testid="teams-field-comment"]'), "the comment field")
        field.clear()
        field.send_keys(comment)
        page.click(f'{card} [data-testid="teams-btn-approve"]', f"Approve as {person}")

    # The requester is refused: the card answered to her says why.
    approve("alice@example.com", "mine to ship")
    page.card_shows(card, "Separation of duties")
    assert page.find(f'{card} [data-testid="teams-personal"]')
    page.shoot("teams-refused")

    # Carol approves with a comment: her answered card shows her vote, 1 of 2.
    approve("carol@example.com", "Migration window agreed.")
    page.card_shows(card, "1 of 2")
    assert "Separation of duties" not in page.text(card)
    now = teams_stack.call("GET", f"/v1/checkpoints/{cp}").body
    assert now["status"] == "PENDING"
    assert [(v["approver"], v["comment"]) for v in now["votes"]] == [("carol@example.com", "Migration window agreed.")]
    page.shoot("teams")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[no-untyped-call]
    assert not severe, severe


# -- the helpdesk ---------------------------------------------------------------------------------


def test_a_question_typed_on_the_page_is_answered_in_its_thread_with_the_helpdesk_buttons(
    stack: LocalSignoff, browser: webdriver.Chrome
) -> None:
    page = SandboxPage(browser, stack)
    page.open()
    page.act_as("alice@example.com")
    # Given the form, which lists the channels helpdesk.yaml names
    page.until(lambda: page.find('[data-testid="ask"]').is_displayed() or None, "the helpdesk form")
    Select(page.find('[data-testid="ask-channel"]')).select_by_value("C01ITHELP")
    # When Alice types a question and sends it
    page.find('[data-testid="ask-text"]').send_keys("How do I connect to the VPN from home?")
    page.click('[data-testid="ask-send"]', "Send")
    # Then her message shows under her name, and the bot's cited answer in its thread with three buttons
    channel = '[data-testid="channel-C01ITHELP"]'
    page.until(lambda: "Alice Martin" in page.text(channel) or None, "Alice's message")
    answer = page.until(
        lambda: next((r.text for r in page.finds(f"{channel} [data-testid='reply']") if "Source:" in r.text), None),
        "the answer in the thread",
    )
    assert all(label in answer for label in ("Helpful", "Not helpful", "Talk to a human"))

    # And Talk to a human, clicked on the page as Alice, hands it off with Claim / Resolved / Back to the bot
    def talk_to_a_human() -> bool:
        button = browser.find_element(By.XPATH, "//button[normalize-space()='Talk to a human']")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        return True

    page.until(talk_to_a_human, "the Talk to a human button")
    handoff = page.until(
        lambda: next((r.text for r in page.finds(f"{channel} [data-testid='reply']") if "Claim" in r.text), None),
        "the hand-off in the thread",
    )
    assert "Back to the bot" in handoff and "IT-" in handoff
