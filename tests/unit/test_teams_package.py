"""The Teams app package: the manifest filled in, the icons Teams asks for, zipped."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
from teams_package import build, manifest

pytestmark = pytest.mark.unit
APP_ID = "5160ff00-0000-4000-8000-00000000b07a"
API = "https://abc123.execute-api.eu-west-1.amazonaws.com/live/"


def test_the_package_holds_a_filled_manifest_and_both_icons(tmp_path: Path) -> None:
    zipped = build(APP_ID, API, "https://example.com", tmp_path / "signoff-teams.zip")
    with zipfile.ZipFile(zipped) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        data = json.loads(package.read("manifest.json"))
        sizes = {name: struct.unpack(">II", package.read(name)[16:24]) for name in ("color.png", "outline.png")}
    assert data["id"] == data["bots"][0]["botId"] == APP_ID
    assert data["validDomains"] == ["abc123.execute-api.eu-west-1.amazonaws.com"]
    assert "{{" not in json.dumps(data)
    assert sizes == {"color.png": (192, 192), "outline.png": (32, 32)}


@pytest.mark.parametrize(("app_id", "api"), [("not-a-guid", API), (APP_ID, "no-url")])
def test_bad_ids_and_urls_are_refused(app_id: str, api: str) -> None:
    with pytest.raises(ValueError):
        manifest(app_id, api, "https://example.com")
