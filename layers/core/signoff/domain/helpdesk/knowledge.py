"""The knowledge folder: Markdown documents with front matter (title, owner, audience, authority,
reviewed date, link), split into sections. Only curated sources are ever searched."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from signoff.domain.errors import PolicyError
from signoff.domain.helpdesk.config import Authority

_REQUIRED = ("title", "owner", "audience", "authority", "reviewed", "link")
_HEADING = re.compile(r"^(#{1,3})\s+(.*)$")


@dataclass(frozen=True)
class Section:
    heading: str
    text: str


@dataclass(frozen=True)
class Document:
    path: str
    title: str
    owner: str
    audience: str
    authority: Authority
    reviewed: dt.date
    link: str
    sections: tuple[Section, ...]

    def stale(self, today: dt.date, max_age_days: int) -> bool:
        """A source not reviewed within `max_age_days` is stale: still searchable, but penalised."""
        return (today - self.reviewed).days > max_age_days


@dataclass(frozen=True)
class KnowledgeBase:
    documents: tuple[Document, ...]
    sha256: str

    @property
    def version(self) -> str:
        return f"{len(self.documents)}docs+{self.sha256[:12]}"


def _front_matter(text: str, source: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        raise PolicyError(source, ["(front matter): the file must start with a --- front matter block"])
    end = text.find("\n---\n", 4)
    if end < 0:
        raise PolicyError(source, ["(front matter): the --- block is not closed"])
    meta: dict[str, str] = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip().strip('"')
    return meta, text[end + 5 :]


def _sections(body: str, title: str) -> tuple[Section, ...]:
    sections: list[Section] = []
    heading, lines = title, list[str]()
    for line in body.splitlines():
        match = _HEADING.match(line)
        if match:
            if " ".join(lines).strip():
                sections.append(Section(heading, "\n".join(lines).strip()))
            heading, lines = (match.group(2).strip() if len(match.group(1)) > 1 else title), []
        else:
            lines.append(line)
    if " ".join(lines).strip():
        sections.append(Section(heading, "\n".join(lines).strip()))
    return tuple(sections)


def parse_document(text: str, path: str) -> Document:
    """One Markdown document; raises PolicyError naming each missing or invalid front-matter field."""
    meta, body = _front_matter(text, path)
    problems = [f"front matter.{key}: missing" for key in _REQUIRED if not meta.get(key)]
    authority: Authority | None = None
    reviewed: dt.date | None = None
    if meta.get("authority"):
        try:
            authority = Authority(meta["authority"])
        except ValueError:
            problems.append(
                f"front matter.authority: {meta['authority']!r} is not one of official, guidance, community"
            )
    if meta.get("reviewed"):
        try:
            reviewed = dt.date.fromisoformat(meta["reviewed"])
        except ValueError:
            problems.append(f"front matter.reviewed: {meta['reviewed']!r} is not a date (YYYY-MM-DD)")
    if problems or authority is None or reviewed is None:
        raise PolicyError(path, problems)
    return Document(
        path=path,
        title=meta["title"],
        owner=meta["owner"],
        audience=meta["audience"],
        authority=authority,
        reviewed=reviewed,
        link=meta["link"],
        sections=_sections(body, meta["title"]),
    )


def load_knowledge(folder: str | Path) -> KnowledgeBase:
    """Every `*.md` under `folder`, sorted by path so the index (and its hash) is deterministic."""
    folder = Path(folder)
    files = sorted(folder.rglob("*.md"))
    if not files:
        raise PolicyError(str(folder), ["(folder): holds no Markdown documents"])
    digest = hashlib.sha256()
    documents = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        relative = file.relative_to(folder.parent).as_posix()
        digest.update(relative.encode() + b"\0" + text.encode() + b"\0")
        documents.append(parse_document(text, relative))
    return KnowledgeBase(documents=tuple(documents), sha256=digest.hexdigest())
