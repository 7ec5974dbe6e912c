"""The content library: every article's front matter, the library as a whole (enough items, in
both languages, consistent with DOMAIN.md), and `content sync` (new, changed, retired, restored)
on both backends."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.domain.i18n import SUPPORTED
from bot.messaging.content import (
    ARTICLES_DIR,
    MAX_BODY_CHARS,
    SEED_CITATION,
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
    # Targets quoted as DOMAIN.md gives them (387/QĐ-TTg: 80/75/75% by 2030; 677/QĐ-TTg: 60%),
    # as the floors they are ("trở lên", seed 001 line 62), never "about".
    assert "từ 80% trở lên** số hộ gia đình" in vi and "từ 75% trở lên** số dòng họ" in vi
    assert "từ 75% trở lên** số thôn, tổ dân phố" in vi and "at least 80% of households" in en
    assert not re.search(r"khoảng \W*\d+ ?%", vi) and not re.search(r"about \W*\d+ ?%", en)
    # Công dân học tập counts the working-age people of learning families, clans, communities
    # and units (DOMAIN.md "Corrections and additions"; seed 001 line 54), not "adults".
    assert "677/QĐ-TTg" in vi and "số người trong độ tuổi lao động" in vi and "people of working age" in en
    assert "người lớn trong" not in vi and "of adults in" not in en
    # Household registers (sổ hộ khẩu) were abolished in 2023.
    assert "hộ khẩu" not in vi and not re.search(r"household register\b", en)
    # A commune may have more than one centre, or classes held in the villages.
    assert not re.search(r"mỗi xã, phường có một", vi, re.IGNORECASE)
    assert "Every commune and ward has" not in en
    # A figure of the movement carries its year.
    for sentence in re.split(r"(?<=[.!?])\s", vi):
        if "27 triệu" in sentence:
            assert "2025" in sentence, sentence
    # The Week's second day is not always 2 October: its article must not say "today".
    for a in LIBRARY:
        if a.campaign_day == 2:
            assert not re.search(r"hôm nay|today", f"{a.title} {a.body}", re.IGNORECASE), a.source
    # Communes close the year around 30 November; the province reports before 15 December
    # (DOMAIN.md "Report periods"; seed 002 line 354: reports "vào tháng 6 và tháng 12").
    calendar = {a.language: a.body for a in LIBRARY if a.item_key == "study-promotion-calendar"}
    assert "30 tháng 11" in calendar["vi"] and "15 tháng 12" in calendar["vi"]
    assert "30 November" in calendar["en"] and "15 December" in calendar["en"]
    for theme in (
        "Xây dựng năng lực tự học trong kỷ nguyên số",
        "Phát triển văn hóa đọc thúc đẩy học tập suốt đời",
    ):
        assert theme in vi
    # Titles are registered early in the year and recognised by the commune at the year's end.
    register = next(a for a in LIBRARY if a.item_key == "learning-family-register" and a.language == "vi")
    assert "tháng 1–2" in register.body and "xã xem xét và công nhận" in register.body
    assert "100 điểm" in register.body


# ------------------------------------------------------------------- figures need sources
# A figure is something a reader could check against a decision or a plan: a percentage, a
# year, a date, a document number, or a quantity with a magnitude, thousands separators or a
# currency. List numbering ("1. " at the start of a line), the small counts of advice and
# stories ("15 phút", "lớp 3", "62 tuổi", "7 ngày"), telephone numbers and example passwords
# are not figures: no decision stands behind them.
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DOCUMENT = r"\b\d+(?:/\d{4})?/[A-ZĐ][A-Za-zĐđ0-9]*(?:-[A-Za-zĐđ0-9]+)*|\b\d+-[A-Z]+/[A-Z]+\b"
_FIGURE = re.compile(
    "|".join(
        (
            r"\d+(?:[.,]\d+)?\s?%",  # a percentage
            r"(?<![\d.,])(?:19|20)\d{2}(?![.,]?\d)",  # a year
            _DOCUMENT,  # 387/QĐ-TTg, 91/2025/QH15, 11-CT/TW
            r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b",  # 2/10, 25/3/2022
            # (ngày 2) tháng 10, tháng 1–2; but "mỗi tháng 2 lần" counts, and "mỗi ngày 15 phút"
            # is why "ngày N" alone is not a date
            r"\btháng\s+\d{1,2}\b(?!\s*(?:lần|buổi|ngày|tuần|giờ|phút|cuốn|trang))",
            rf"\b\d{{1,2}}(?:\s*[–-]\s*\d{{1,2}})?\s+(?:{_MONTHS})\b|\b(?:{_MONTHS})\s+\d{{1,2}}\b",
            r"\b\d+(?:[.,]\d+)?\s*(?:triệu|nghìn|ngàn|tỷ|tỉ|vạn|million|billion|thousand)\b",
            r"\b\d+(?:[.,]\d{3})*\s*(?:đ|đồng|VND|VNĐ)(?!\w)",  # money
            r"\b\d{1,3}(?:[.,]\d{3})+\b",  # 3.321 (xã)
        )
    ),
    re.IGNORECASE,
)
_LIST_NUMBER = re.compile(r"^\s*\d+[.)]\s+", re.MULTILINE)
_URL = re.compile(r"https?://\S+")


def figures(text: str) -> list[str]:
    """The figures a text states, in order (see above for what counts)."""
    text = _URL.sub(" ", _LIST_NUMBER.sub("", text))
    return [m.group(0) for m in _FIGURE.finditer(text)]


@pytest.mark.parametrize(
    "text, found",
    [
        ("mục tiêu đến năm 2030 là có **từ 75% trở lên** số dòng họ", ["2030", "75%"]),
        ("Quyết định 387/QĐ-TTg (năm 2022)", ["387/QĐ-TTg", "2022"]),
        ("Luật 91/2025/QH15 và Chỉ thị 11-CT/TW", ["91/2025/QH15", "11-CT/TW"]),
        ("**Ngày 2 tháng 10:** Ngày Khuyến học; **Tháng 1–2:** đăng ký", ["tháng 10", "Tháng 1"]),
        ("vào dịp Ngày Khuyến học Việt Nam (2/10)", ["2/10"]),
        ("khoảng **27 triệu hội viên**, 3.321 xã, 32.000 đ mỗi người", ["27 triệu", "3.321", "32.000 đ"]),
        ("usually from 1 to 7 October; 8 million families; June 15", ["7 October", "8 million", "June 15"]),
        ("1. Mở trang congdanhoctap.vn\n2. Đăng ký tài khoản", []),
        ("**15 phút mỗi tối**; cháu lớp 3; năm 62 tuổi; cho 7 ngày", []),
        ("gọi 113; mật khẩu “123456”; dài 10–12 ký tự; sơ kết 6 tháng", []),
        ("đọc cùng con mỗi ngày 15 phút; họp mỗi tháng 2 lần", []),
        ("xem https://example.org/2024/10/tin", []),
    ],
)
def test_what_counts_as_a_figure(text: str, found: list[str]) -> None:
    assert figures(text) == found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONTENT / ARTICLES_DIR).as_posix())
def test_an_article_with_figures_names_its_sources(path: Path) -> None:
    a = parse_article(path, CONTENT, TOPICS)
    text = f"{a.title}\n{a.body}"
    stated = figures(text)
    assert not stated or a.sources, f"{a.source} states {stated} but has no `sources:`"
    for number in re.findall(_DOCUMENT, text):  # a decision it names is among its sources
        assert any(number in source for source in a.sources), f"{a.source}: {number} not in sources"


def _shared(name: str) -> Path | None:
    """DOMAIN.md or the seeds, beside the checkout (or where KHUYENHOC_SEEDS_DIR says)."""
    if name == "seeds" and os.environ.get("KHUYENHOC_SEEDS_DIR"):
        return Path(os.environ["KHUYENHOC_SEEDS_DIR"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / name).exists():
            return parent / "shared" / name
    return None


SEEDS_README = (CONTENT / ARTICLES_DIR / "README.md").read_text(encoding="utf-8")
KNOWN_SEEDS = set(re.findall(r"\d{3}_[0-9a-f]{16}\.txt", SEEDS_README))


def test_cited_seeds_exist_and_say_what_is_quoted() -> None:
    seeds, domain = _shared("seeds"), _shared("DOMAIN.md")
    assert len(KNOWN_SEEDS) == 5  # content/articles/README.md lists the seeds one may cite
    if seeds is not None:
        assert {p.name for p in seeds.glob("*.txt")} == KNOWN_SEEDS
    headings = []
    if domain is not None:
        lines = domain.read_text(encoding="utf-8").splitlines()
        headings = [line for line in lines if line.startswith(("#", "**"))]
    cited = 0
    for a in LIBRARY:
        for source in a.sources:
            if match := SEED_CITATION.match(source):
                cited += 1
                assert match["file"] in KNOWN_SEEDS, f"{a.source}: no seed {match['file']}"
                if seeds is None:
                    continue
                lines = (seeds / match["file"]).read_text(encoding="utf-8").splitlines()
                number = int(match["line"])
                assert number <= len(lines) and lines[number - 1].strip(), f"{a.source}: {source}"
                if match["quote"]:
                    assert match["quote"] in lines[number - 1], f"{a.source}: {source}"
            elif source.startswith("DOMAIN.md"):
                section = re.fullmatch(r'DOMAIN\.md "([^"]+)"', source)
                assert section, f'{a.source}: cite DOMAIN.md as DOMAIN.md "<section>", not {source!r}'
                if headings:
                    assert any(section[1] in h for h in headings), f"{a.source}: {source}"
    assert cited >= 10


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
    for sources, message in (
        ("sources: []", "sources must be a non-empty list"),
        ('sources: ["seed 001 line 54"]', "cite a seed as"),
        ('sources: ["seed 001_6ce17120d0220863.txt line 0"]', "cite a seed as"),
    ):
        path.write_text(good.replace("kind: tip", f"kind: tip\n{sources}"), encoding="utf-8")
        with pytest.raises(ContentError, match=message):
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
        # Sources are for reviewers: citing one changes nothing members receive.
        cited = content / ARTICLES_DIR / "vi" / "hoc-bong-vuot-kho.md"
        text = cited.read_text(encoding="utf-8")
        assert "sources:\n" in text
        cited.write_text(text.replace("sources:\n", 'sources:\n  - "Điều lệ Hội"\n'), encoding="utf-8")
        assert (await sync_content(uow, content, now)).unchanged == n
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
