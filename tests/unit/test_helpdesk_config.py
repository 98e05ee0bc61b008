"""helpdesk.yaml and the knowledge folder are validated like the policy: every error names its path,
and the version is the declared semver plus a content hash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff.domain.errors import PolicyError
from signoff.domain.helpdesk.config import parse_helpdesk_config
from signoff.domain.helpdesk.knowledge import load_knowledge, parse_document

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DATA: dict[str, Any] = yaml.safe_load((ROOT / "helpdesk.yaml").read_text(encoding="utf-8"))


def _problems(data: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_helpdesk_config(data)
    return caught.value.problems


def _changed(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(DATA)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


def test_the_shipped_config_is_valid_and_versioned() -> None:
    loaded = parse_helpdesk_config(DATA)
    assert loaded.version.startswith(DATA["version"] + "+")
    assert len(loaded.version.split("+")[1]) == 12


def test_the_version_changes_with_the_content_not_with_key_order() -> None:
    # Given the same content in another key order, and a changed threshold
    reordered = dict(reversed(list(DATA.items())))
    changed = _changed("classes.how_to.threshold", 50)

    # Then the first has the same version and the second another
    assert parse_helpdesk_config(reordered).version == parse_helpdesk_config(DATA).version
    assert parse_helpdesk_config(changed).version != parse_helpdesk_config(DATA).version


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("classes.how_to.queue", "nowhere", "classes.how_to.queue: names unknown queue 'nowhere'"),
        ("classes.access_request.visibility", "public_thread", "classes.access_request.visibility: a privileged"),
        (
            "classes.access_request.route",
            "answer",
            "classes.access_request.route: a privileged class is never answered",
        ),
        ("classes.software_request.form", None, "classes.software_request.form: an approval class needs a form"),
        ("classes.incident", _DELETE, "classes: misses the class 'incident'"),
        ("classes.how_to.risk", 0.5, "classes.how_to.risk: Input should be greater than or equal to 1"),
        ("confidence.weights.margin", 11, "confidence.weights: weights must add up to 100"),
        ("cues.privileged.finance", [], "cues.privileged.finance: must list at least one cue"),
        ("version", "1.0", "version: String should match pattern"),
        ("repeat_window", "ten minutes", "repeat_window: duration 'ten minutes' must look like"),
        ("queues.iam.ticket_project", "iam", "queues.iam.ticket_project: String should match pattern"),
    ],
)
def test_each_error_names_its_path(path: str, value: Any, expected: str) -> None:
    problems = _problems(_changed(path, value))
    assert any(p.startswith(expected) for p in problems), problems


def test_a_non_mapping_is_refused_at_the_top_level() -> None:
    assert _problems(["not", "a", "mapping"]) == ["(top level): the helpdesk config must be a mapping"]


def test_the_knowledge_folder_loads_every_document_with_its_front_matter() -> None:
    knowledge = load_knowledge(ROOT / "knowledge")
    assert len(knowledge.documents) >= 25
    assert all(d.sections and d.link.startswith("https://") for d in knowledge.documents)


def test_a_document_missing_front_matter_fields_names_them() -> None:
    text = "---\ntitle: VPN\nauthority: gospel\nreviewed: yesterday\n---\n# VPN\nUse it.\n"
    with pytest.raises(PolicyError) as caught:
        parse_document(text, "knowledge/vpn.md")
    problems = caught.value.problems
    assert "front matter.owner: missing" in problems
    assert "front matter.link: missing" in problems
    assert any(p.startswith("front matter.authority: 'gospel'") for p in problems)
    assert any(p.startswith("front matter.reviewed: 'yesterday'") for p in problems)
