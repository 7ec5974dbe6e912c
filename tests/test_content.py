"""The content library: every article's front matter, the library as a whole (enough items, in
both languages, consistent with DOMAIN.md), and `content sync` (new, changed, retired, restored)
on both backends."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.domain.i18n import SUPPORTED
from bot.messaging.content import (
    ARTICLES_DIR,
    MAX_BODY_CHARS,
    ContentError,
    load_library,
    load_topics,
    parse_article,
    sync_content,
    to_plain_text,
)
from storage.db import Database
from storage.models import ROLES
from storage.models_outreach import CAMPAIGN, CONTENT_KINDS
from storage.uow import UnitOfWork
from tests.support import CONTENT, START

FILES = sorted(p for p in (CONTENT / ARTICLES_DIR).rglob("*.md") if p.name != "README.md")
TOPICS = {t.key for t in load_topics(CONTENT)}
LIBRARY = load_library(CONTENT)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONTENT / ARTICLES_DIR).as_posix())
def test_front_matter(path: Path) -> None:
    a = parse_article(path, CONTENT, TOPICS)  # raises on anything malformed
    assert a.language == path.parent.name  # vi/… and en/…
    assert a.kind in CONTENT_KINDS and set(a.audience) <= set(ROLES) and set(a.topics) <= TOPICS
    assert a.published <= START.date()
    assert len(to_plain_text(a.body)) <= MAX_BODY_CHARS
    assert "{" not in a.body and "TODO" not in a.body
    if a.kind == CAMPAIGN:
        assert a.campaign == "lifelong_learning_week" and a.campaign_day in range(1, 8)
    if a.kind == "story":  # written for the project, and saying so
        assert "Khuyến học Bot" in a.body and ("minh họa" in a.body or "illustrative" in a.body)


def test_the_library_is_big_enough_and_translated() -> None:
    vi = {a.item_key for a in LIBRARY if a.language == "vi"}
    en = {a.item_key for a in LIBRARY if a.language == "en"}
    assert len(vi) >= 30 and len(en) >= 10
    assert en <= vi  # every English article translates a Vietnamese one
    assert {a.language for a in LIBRARY} == set(SUPPORTED)
    for language in SUPPORTED:  # an article for each day of the Week, in each language
        days = {a.campaign_day for a in LIBRARY if a.language == language and a.kind == CAMPAIGN}
        assert days == set(range(1, 8)), language
    used = {t for a in LIBRARY for t in a.topics}
    assert used == TOPICS  # no topic to choose that never gets an article
    for language in SUPPORTED:
        titles = [a.title for a in LIBRARY if a.language == language]
        assert len(titles) == len(set(titles))
    kinds = {a.kind for a in LIBRARY}
    assert kinds == set(CONTENT_KINDS)


def test_topic_labels_are_short_and_translated() -> None:
    for topic in load_topics(CONTENT):
        assert set(topic.labels) == set(SUPPORTED)
        assert all(len(label) <= 32 for label in topic.labels.values())


def _text(language: str) -> str:
    return "\n".join(f"{a.title}\n{a.body}" for a in LIBRARY if a.language == language)


def test_articles_agree_with_the_domain() -> None:
    vi, en = _text("vi"), _text("en")
    # Districts were abolished on 1 July 2025: no article may send people to one.
    assert not re.search(r"\bhuyện\b", vi, re.IGNORECASE)
    assert not re.search(r"\bdistricts?\b", en, re.IGNORECASE)
    # The Week is 1-7 October, Study Promotion Day 2 October; Learning citizen is self-assessed online.
    assert "ngày 1 đến ngày 7 tháng 10" in vi and "from 1 to 7 October" in en
    assert "Ngày 2 tháng 10" in vi and "2 October" in en
    assert "congdanhoctap.vn" in vi and "congdanhoctap.vn" in en
    # Targets quoted as DOMAIN.md gives them (387/QĐ-TTg: 80/75/75% by 2030; 677/QĐ-TTg: 60%).
    assert "80% hộ gia đình" in vi and "75% dòng họ" in vi and "75% thôn, tổ dân phố" in vi
    assert "677/QĐ-TTg" in vi and "60% người lớn" in vi
    for theme in (
        "Xây dựng năng lực tự học trong kỷ nguyên số",
        "Phát triển văn hóa đọc thúc đẩy học tập suốt đời",
    ):
        assert theme in vi
    # Titles are registered early in the year and recognised by the commune at the year's end.
    register = next(a for a in LIBRARY if a.item_key == "learning-family-register" and a.language == "vi")
    assert "tháng 1–2" in register.body and "xã xem xét và công nhận" in register.body
    assert "100 điểm" in register.body


def test_bad_articles_are_refused_with_the_file_named(tmp_path: Path) -> None:
    (tmp_path / ARTICLES_DIR / "vi").mkdir(parents=True)
    shutil.copy(CONTENT / ARTICLES_DIR / "topics.yaml", tmp_path / ARTICLES_DIR / "topics.yaml")
    good = (CONTENT / ARTICLES_DIR / "vi" / "doc-sach-cung-con.md").read_text(encoding="utf-8")
    cases = {
        "kind: tip": ("kind: news", "kind must be one of"),
        "topics: [reading]": ("topics: [gardening]", "unknown topics"),
        "audience: [member]": ("audience: [everyone]", "unknown audience"),
        "language: vi": ("language: fr", "language must be one of"),
        "published: 2026-04-06": ("published: someday", "published must be a date"),
        "id: reading-with-children": ("id: Reading With Children", "lower-case"),
    }
    path = tmp_path / ARTICLES_DIR / "vi" / "bad.md"
    topics = {t.key for t in load_topics(tmp_path)}
    for old, (new, message) in cases.items():
        assert old in good, old
        path.write_text(good.replace(old, new), encoding="utf-8")
        with pytest.raises(ContentError, match=message) as info:
            parse_article(path, tmp_path, topics)
        assert "articles/vi/bad.md" in str(info.value)
    path.write_text(good.replace("kind: tip", "kind: tip\nauthor: me"), encoding="utf-8")
    with pytest.raises(ContentError, match="unknown front matter keys"):
        parse_article(path, tmp_path, topics)
    path.write_text(good + "x" * MAX_BODY_CHARS, encoding="utf-8")
    with pytest.raises(ContentError, match="longer than"):
        parse_article(path, tmp_path, topics)
    path.write_text(good, encoding="utf-8")
    shutil.copy(path, tmp_path / ARTICLES_DIR / "vi" / "copy.md")
    with pytest.raises(ContentError, match="is also used by"):
        load_library(tmp_path)


async def test_sync_adds_changes_retires_and_restores(db: Database, tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT / ARTICLES_DIR, content / ARTICLES_DIR)
    now = START
    n = len(FILES)
    async with UnitOfWork(db) as uow:
        result = await sync_content(uow, content, now)
        assert (result.new, result.changed, result.retired) == (n, 0, 0)
        await uow.commit()
        assert (await sync_content(uow, content, now)).unchanged == n  # idempotent
        article = content / ARTICLES_DIR / "vi" / "doc-sach-cung-con.md"
        article.write_text(
            article.read_text(encoding="utf-8").replace("15 phút", "20 phút"), encoding="utf-8"
        )
        removed = content / ARTICLES_DIR / "en" / "fake-news.md"
        kept = removed.read_text(encoding="utf-8")
        removed.unlink()
        result = await sync_content(uow, content, now)
        assert (result.new, result.changed, result.retired, result.unchanged) == (0, 1, 1, n - 2)
        await uow.commit()
        rows = {(r.item_key, r.language): r for r in await uow.content.every()}
        assert len(rows) == n  # retired, not deleted
        assert rows[("fake-news", "en")].retired_at is not None
        assert "20 phút" in rows[("reading-with-children", "vi")].body
        assert rows[("fake-news", "vi")].retired_at is None  # the other language lives on
        removed.write_text(kept, encoding="utf-8")
        result = await sync_content(uow, content, now)
        assert (result.restored, result.retired) == (1, 0)
        await uow.commit()
        assert (await uow.content.translations("fake-news")).get("en").retired_at is None  # type: ignore[union-attr]


def test_cli_content_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.runtime.cli import app

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CONTENT_DIR", str(CONTENT))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["content", "sync"])
    assert first.exit_code == 0, first.output
    assert f"{len(FILES)} new, 0 changed" in first.output
    second = runner.invoke(app, ["content", "sync"])
    assert f"0 new, 0 changed, {len(FILES)} unchanged, 0 retired" in second.output
