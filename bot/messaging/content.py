"""The content library: Markdown articles with front matter under content/articles, loaded into
the database by `khuyenhoc content sync`.

Files are the source of truth, edited by people and reviewed like code; the database holds what
the bot sends, so that messages, sent-item history and broadcasts keep pointing at an item even
after its file is removed (it is then retired, never deleted).

Front matter (one file per item and language; translations share the `id`):

    id: learning-family-register      # lower-case letters, digits and hyphens
    title: "Đăng ký Gia đình học tập"
    kind: explainer                   # tip | story | explainer | campaign
    topics: [learning_titles]         # keys of content/articles/topics.yaml
    audience: [member]                # roles that may receive it
    language: vi                      # vi | en
    published: 2026-01-05
    valid_from: 2026-01-01            # optional: not sent before
    valid_until: 2026-02-28           # optional: not sent after
    image: images/tu-sach.jpg         # optional, relative to content/
    campaign: lifelong_learning_week  # kind campaign only
    campaign_day: 1                   # optional: the Week's day (1-7) it is meant for
    sources:                          # where its figures, dates and decision numbers come from
      - "Quyết định 387/QĐ-TTg ngày 25/3/2022"
      - 'seed 001_6ce17120d0220863.txt line 62 "65% trở lên dòng họ"'
      - 'DOMAIN.md "Targets"'

An article that states a figure (a percentage, a year, a date, a decision number or a quantity
such as "27 triệu"; list numbering and the small counts of advice, "15 phút", are not figures)
must list its `sources`: tests/test_content.py enforces it and says exactly what counts. Each
entry names a decision or document, a seed (`seed <file> line <n>`, optionally quoting a few
words of that line; content/articles/README.md lists the seeds) or a section of DOMAIN.md.
Sources are for reviewers: never sent, and not part of the item's digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.domain.i18n import SUPPORTED
from storage.models import ROLES
from storage.models_outreach import CAMPAIGN, CONTENT_KINDS, ContentItem
from storage.uow import UnitOfWork

ARTICLES_DIR = "articles"
TOPICS_FILE = "topics.yaml"
KNOWN_CAMPAIGNS = ("lifelong_learning_week",)
# Zalo carries at most 2,000 characters; a title, the sender line and the footer must fit too.
MAX_BODY_CHARS = 1600
MAX_TITLE_CHARS = 120
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_REQUIRED = ("id", "title", "kind", "topics", "audience", "language", "published")
_OPTIONAL = ("valid_from", "valid_until", "image", "campaign", "campaign_day", "sources")
# A seed is cited by file and line, and may quote a few words of that line.
SEED_CITATION = re.compile(
    r'^seed (?P<file>\d{3}_[0-9a-f]{16}\.txt) line (?P<line>[1-9]\d*)(?: "(?P<quote>[^"]+)")?$'
)


class ContentError(ValueError):
    """An article that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Topic:
    key: str
    labels: dict[str, str]

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels.get("vi") or self.key


@dataclass(frozen=True, slots=True)
class Article:
    """One parsed file."""

    item_key: str
    language: str
    kind: str
    title: str
    body: str
    topics: list[str]
    audience: list[str]
    published: date
    source: str
    valid_from: date | None = None
    valid_until: date | None = None
    image: str | None = None
    campaign: str | None = None
    campaign_day: int | None = None
    sources: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        data = asdict(self)
        data.pop("extra")
        data.pop("sources")  # for reviewers: citing a source changes nothing members receive
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def load_topics(content_dir: Path) -> list[Topic]:
    """The topics members can choose, in the order the file gives them."""
    path = content_dir / ARTICLES_DIR / TOPICS_FILE
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    topics = []
    for entry in data.get("topics") or []:
        labels = {str(k): str(v) for k, v in (entry.get("label") or {}).items()}
        topics.append(Topic(str(entry["key"]), labels))
    return topics


def _date(value: Any, name: str, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ContentError(f"{where}: {name} must be a date (YYYY-MM-DD), not {value!r}") from None


def _str_list(value: Any, name: str, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ContentError(f"{where}: {name} must be a non-empty list of words")
    return [str(v) for v in value]


def parse_article(path: Path, content_dir: Path, topic_keys: Iterable[str]) -> Article:
    """Read and check one file. Every problem is a ContentError naming the file."""
    where = path.relative_to(content_dir).as_posix()
    try:
        post = frontmatter.load(str(path))
    except (yaml.YAMLError, ValueError) as exc:
        raise ContentError(f"{where}: front matter is not valid YAML: {exc}") from None
    meta = dict(post.metadata)
    missing = [k for k in _REQUIRED if meta.get(k) in (None, "", [])]
    if missing:
        raise ContentError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(meta) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ContentError(f"{where}: unknown front matter keys {unknown}")
    key = str(meta["id"])
    if not _ID.match(key) or len(key) > 128:
        raise ContentError(f"{where}: id {key!r} must be lower-case letters, digits and hyphens")
    kind = str(meta["kind"])
    if kind not in CONTENT_KINDS:
        raise ContentError(f"{where}: kind must be one of {', '.join(CONTENT_KINDS)}")
    language = str(meta["language"])
    if language not in SUPPORTED:
        raise ContentError(f"{where}: language must be one of {', '.join(SUPPORTED)}")
    title = str(meta["title"]).strip()
    if len(title) > MAX_TITLE_CHARS:
        raise ContentError(f"{where}: title longer than {MAX_TITLE_CHARS} characters")
    topics = _str_list(meta["topics"], "topics", where)
    known = set(topic_keys)
    if bad := [t for t in topics if t not in known]:
        raise ContentError(f"{where}: unknown topics {bad} (see {ARTICLES_DIR}/{TOPICS_FILE})")
    audience = _str_list(meta["audience"], "audience", where)
    if bad := [r for r in audience if r not in ROLES]:
        raise ContentError(f"{where}: unknown audience roles {bad}")
    published = _date(meta["published"], "published", where)
    assert published is not None
    valid_from = _date(meta.get("valid_from"), "valid_from", where)
    valid_until = _date(meta.get("valid_until"), "valid_until", where)
    if valid_from and valid_until and valid_from > valid_until:
        raise ContentError(f"{where}: valid_from is after valid_until")
    image = meta.get("image")
    if image is not None:
        image = str(image)
        if image.startswith("/") or ".." in Path(image).parts or not (content_dir / image).is_file():
            raise ContentError(f"{where}: image {image!r} is not a file under content/")
    campaign = meta.get("campaign")
    if campaign is not None and campaign not in KNOWN_CAMPAIGNS:
        raise ContentError(f"{where}: unknown campaign {campaign!r}")
    if kind == CAMPAIGN and campaign is None:
        raise ContentError(f"{where}: a campaign item names its campaign")
    day = meta.get("campaign_day")
    if day is not None and (campaign is None or not isinstance(day, int) or not 1 <= day <= 7):
        raise ContentError(f"{where}: campaign_day must be 1-7, with a campaign")
    sources = _sources(meta.get("sources"), where)
    body = post.content.strip()
    if not body:
        raise ContentError(f"{where}: the article has no text")
    if len(to_plain_text(body)) > MAX_BODY_CHARS:
        raise ContentError(f"{where}: the text is longer than {MAX_BODY_CHARS} characters")
    return Article(
        item_key=key,
        language=language,
        kind=kind,
        title=title,
        body=body,
        topics=topics,
        audience=audience,
        published=published,
        source=where,
        valid_from=valid_from,
        valid_until=valid_until,
        image=image,
        campaign=str(campaign) if campaign else None,
        campaign_day=day,
        sources=sources,
    )


def _sources(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    entries = _str_list(value, "sources", where)
    entries = [e.strip() for e in entries]
    for entry in entries:
        if not entry:
            raise ContentError(f"{where}: sources has an empty entry")
        if entry.startswith("seed") and not SEED_CITATION.match(entry):
            raise ContentError(
                f'{where}: cite a seed as `seed <file> line <n>` (optionally `"a few words"`), not {entry!r}'
            )
    return tuple(entries)


def load_library(content_dir: Path) -> list[Article]:
    """Every article under content/articles, checked; raises on the first bad file."""
    topic_keys = [t.key for t in load_topics(content_dir)]
    articles: list[Article] = []
    seen: dict[tuple[str, str], str] = {}
    for path in sorted((content_dir / ARTICLES_DIR).rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        article = parse_article(path, content_dir, topic_keys)
        ident = (article.item_key, article.language)
        if ident in seen:
            raise ContentError(
                f"{article.source}: id {article.item_key!r} in {article.language} "
                f"is also used by {seen[ident]}"
            )
        seen[ident] = article.source
        articles.append(article)
    return articles


# ------------------------------------------------------------------------------- rendering

_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+")
_BULLET = re.compile(r"^\s*[-*+]\s+")


def to_plain_text(markdown: str) -> str:
    """Light Markdown as plain text every channel shows alike (Zalo renders no markup)."""
    lines = []
    for line in markdown.strip().splitlines():
        line = _HEADING.sub("", line)
        line = _BULLET.sub("• ", line)
        line = _BOLD.sub(r"\2", line)
        line = _ITALIC.sub(r"\2", line)
        line = _LINK.sub(r"\1 (\2)", line)
        lines.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def item_text(item: ContentItem | Article) -> str:
    """An item as one message: the title, then the text."""
    return f"{item.title}\n\n{to_plain_text(item.body)}"


# ------------------------------------------------------------------------------- sync


@dataclass
class SyncResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    retired: int = 0
    restored: int = 0

    def __str__(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.retired} retired, {self.restored} restored"
        )


def _apply(row: ContentItem, a: Article) -> None:
    row.kind, row.title, row.body = a.kind, a.title, a.body
    row.topics, row.audience = list(a.topics), list(a.audience)
    row.published, row.valid_from, row.valid_until = a.published, a.valid_from, a.valid_until
    row.image, row.campaign, row.campaign_day = a.image, a.campaign, a.campaign_day
    row.source, row.digest = a.source, a.digest


async def sync_content(uow: UnitOfWork, content_dir: Path, now: datetime) -> SyncResult:
    """Bring content_items in line with the files: insert new, update changed, retire removed.

    Idempotent: a second run with the same files changes nothing. A bad file aborts the whole
    sync (ContentError) so that half a library is never published.
    """
    articles = load_library(content_dir)
    rows = {(r.item_key, r.language): r for r in await uow.content.every()}
    result = SyncResult()
    for a in articles:
        row = rows.pop((a.item_key, a.language), None)
        if row is None:
            row = ContentItem(item_key=a.item_key, language=a.language, created_at=now, updated_at=now)
            _apply(row, a)
            uow.content.add(row)
            result.new += 1
            continue
        if row.retired_at is not None:
            row.retired_at = None
            result.restored += 1
        elif row.digest == a.digest:
            result.unchanged += 1
            continue
        else:
            result.changed += 1
        _apply(row, a)
        row.updated_at = now
    for row in rows.values():
        if row.retired_at is None:
            row.retired_at = now
            result.retired += 1
    await uow.content.flush()
    return result


# ------------------------------------------------------------------------------- choosing
# The items themselves come from `uow.content` (storage.repositories_outreach.ContentRepository).


def is_valid_on(item: ContentItem, day: date) -> bool:
    return (item.valid_from is None or item.valid_from <= day) and (
        item.valid_until is None or item.valid_until >= day
    )


def suits(
    item: ContentItem,
    day: date,
    roles: Sequence[str],
    topics: Sequence[str] = (),
    *,
    campaigns: bool = False,
) -> bool:
    """Whether an item may go to someone with these roles and topics (empty: every topic) today.

    Campaign items go out only with their campaign (`campaigns=True`).
    """
    if not is_valid_on(item, day):
        return False
    if (item.kind == CAMPAIGN) != campaigns:
        return False
    if not set(item.audience) & set(roles):
        return False
    return not topics or bool(set(item.topics) & set(topics))
