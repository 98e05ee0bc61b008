"""Build the Teams app package to upload in Teams admin center (or sideload): the manifest with
the bot's app id and API host filled in, and its two icons, zipped.

    python infra/teams_package.py --app-id <bot app id> --api-url <stack output ApiUrl> [-o signoff-teams.zip]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

PACKAGE = Path(__file__).resolve().parents[1] / "teams"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def manifest(app_id: str, api_url: str, website: str) -> dict[str, object]:
    if not GUID.match(app_id):
        raise ValueError(f"--app-id must be the bot's app registration id (a GUID), not {app_id!r}")
    host = urlsplit(api_url).hostname
    if not host:
        raise ValueError(f"--api-url must be the stack's ApiUrl output, not {api_url!r}")
    text = (PACKAGE / "manifest.json").read_text(encoding="utf-8")
    for name, value in {"BOT_APP_ID": app_id, "API_HOST": host, "WEBSITE_URL": website.rstrip("/")}.items():
        text = text.replace("{{" + name + "}}", value)
    data: dict[str, object] = json.loads(text)
    return data


def build(app_id: str, api_url: str, website: str, output: Path) -> Path:
    data = manifest(app_id, api_url, website)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(data, indent=2))
        for icon in ("color.png", "outline.png"):
            package.write(PACKAGE / icon, icon)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--website", default="https://github.com/signoff")
    parser.add_argument("-o", "--output", type=Path, default=Path("signoff-teams.zip"))
    args = parser.parse_args(argv)
    try:
        print(build(args.app_id, args.api_url, args.website, args.output))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
