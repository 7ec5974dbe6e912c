"""The compiled report as a document an office can file (issue 10 item 1; DOMAIN "Documents",
Nghị định 30/2020/NĐ-CP): both files are opened and their structure checked — the header lines,
Số, place and date, the title with the period, one table per topic with merged group headers,
numbered columns, the unit of measure and number formats, blanks for units without a report,
Nơi nhận and the signature block; the .docx's headings and tables."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from docx import Document as open_docx
from openpyxl import load_workbook

from bot.domain.app import App
from bot.domain.clock import FixedClock
from bot.domain.i18n import translator
from bot.domain.periods import Period
from bot.reports.aggregate import Compiled
from bot.reports.compiled import compile_unit, render
from bot.reports.document import Profile, date_line
from storage.db import Database
from tests.sheet_tables import table_with, tables
from tests.support import Tree, make_app, seed_tree
from tests.test_reports_helpers import submit, vn

H1 = Period.parse("2026-H1")
vi = translator("vi")


@pytest.fixture
async def app(db: Database) -> AsyncIterator[App]:
    app = make_app(db.url, FixedClock(vn(2026, 6, 20, 10)))
    try:
        yield app
    finally:
        await app.db.dispose()


async def fill(app: App) -> Tree:
    """Thôn Nà Rụa reports; Tổ dân phố 1 and the other commune's village do not."""
    tree = await seed_tree(app)
    await submit(
        app,
        tree.village,
        "2026-H1",
        vn(2026, 6, 10),
        households_total=120,
        lf_registered=70,
        members_total=50,
        population_total=400,
        fund_raised_vnd=6_000_000,
    )
    return tree


async def compiled(app: App, unit: Any, period: Period = H1) -> Compiled:
    async with app.read_only() as reads:
        return await compile_unit(
            reads, unit, period, content_dir=app.content_dir, forms=app.forms, now=app.clock.now()
        )


def sheet(c: Compiled, profile: Profile | None = None) -> Any:
    (xlsx,) = render(c, vi, ["xlsx"], profile)
    ws = load_workbook(io.BytesIO(xlsx.data)).active
    assert ws is not None
    return ws


def texts_of(ws: Any) -> list[str]:
    return [v for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]


def test_the_date_line_has_leading_zeros_for_days_under_10_and_months_1_and_2_only() -> None:
    assert date_line(vi, "Thục Phán", date(2026, 3, 5)) == "Thục Phán, ngày 05 tháng 3 năm 2026"
    assert date_line(vi, "Thục Phán", date(2026, 2, 15)) == "Thục Phán, ngày 15 tháng 02 năm 2026"
    assert date_line(vi, "Thục Phán", date(2026, 1, 9)) == "Thục Phán, ngày 09 tháng 01 năm 2026"
    assert date_line(vi, "Cao Bằng", date(2026, 12, 10)) == "Cao Bằng, ngày 10 tháng 12 năm 2026"


async def test_the_xlsx_is_a_document_with_one_table_per_topic(app: App) -> None:
    tree = await fill(app)
    c = await compiled(app, tree.commune)
    c.generated_at = vn(2026, 3, 5, 9)  # the date line of a report dated 5 March
    ws = sheet(c, Profile(signer_name="Nông Văn Hải", signer_title="Phó Chủ tịch", symbol="BC-HKHP"))
    rows = list(ws.iter_rows(values_only=True))
    # The header: parent body above the issuing body, beside the Quốc hiệu and tiêu ngữ.
    assert rows[0][0] == "HỘI KHUYẾN HỌC CAO BẰNG" and rows[1][0] == "HỘI KHUYẾN HỌC PHƯỜNG THỤC PHÁN"
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in rows[0] and "Độc lập - Tự do - Hạnh phúc" in rows[1]
    assert rows[2][0] == "Số: …/BC-HKHP"
    assert "Thục Phán, ngày 05 tháng 3 năm 2026" in rows[2]
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert "A1:F1" in merged and "A2:F2" in merged  # the bodies span the left block
    texts = texts_of(ws)
    assert "BÁO CÁO" in texts
    assert "Kết quả công tác khuyến học, khuyến tài, xây dựng xã hội học tập 6 tháng đầu năm 2026" in texts
    # No period codes and no "tháng 03" anywhere; the comparison column names the period.
    assert not [s for s in texts if "2026-H1" in s or "2025-H1" in s or "tháng 03" in s]
    assert "6 tháng đầu năm 2025" in texts

    topics = tables(rows)
    titles = [t for t in texts if t[:2] in ("1.", "2.", "3.", "4.")]
    assert titles == [
        "1. Tình hình báo cáo và duyệt báo cáo",
        "1. Tổ chức hội và hội viên",
        "2. Danh hiệu học tập",
        "3. Quỹ khuyến học, khuyến tài",
        "4. Hoạt động học tập",
    ]
    for table in topics:
        # Numbered columns (1), (2), … over the whole width, the notes column last.
        assert table.numbers == [f"({i})" for i in range(1, len(table.headers) + 1)]
    members = table_with(rows, "Số hội viên")
    assert members.headers[-1] == "Ghi chú"
    assert members.measures is not None
    assert members.measures[members.column("Số hội viên")] == "người"
    assert members.measures[members.column("Tỷ lệ hội viên trên dân số (%)")] == "%"
    # A group header merged over its columns; a column without a group merged down two rows.
    first = members.first_row
    assert members.groups[members.column("Số hội viên")] == "Hội viên"
    assert f"D{first}:F{first}" in merged
    assert f"A{first}:A{first + 1}" in merged and f"C{first}:C{first + 1}" in merged
    # The reporting village has its figures; the one that has not reported is blank, not 0.
    assert members.value("Thôn Nà Rụa", "Số hội viên") == 50
    missing = members.line("Tổ dân phố 1")
    assert missing[2:-1] == (None,) * (len(missing) - 3)
    assert missing[-1] == "Chưa báo cáo"
    assert members.total is not None and members.total[members.column("Số hội viên")] == 50
    titles_table = table_with(rows, "Tổng số hộ")
    assert titles_table.value("Tổ dân phố 1", "Tổng số hộ") is None
    assert titles_table.value("Thôn Nà Rụa", "Tổng số hộ") == 120
    # Number formats: counts with thousands, rates as percentages, money in đồng.
    fund = table_with(rows, "Quỹ vận động được (đ)")
    fund_row = fund.first_row + 4 - 1  # two header rows, numbers, units: the first line (1-based)
    money_col = fund.column("Quỹ vận động được (đ)") + 1
    assert ws.cell(row=fund_row + 1, column=money_col).value == 6_000_000
    assert ws.cell(row=fund_row + 1, column=money_col).number_format == "#,##0"
    rate_col = members.column("Tỷ lệ hội viên trên dân số (%)") + 1
    assert ws.cell(row=members.first_row + 4, column=rate_col).number_format == "0.0%"
    # Nơi nhận with its markers, the file copy; the signature block with title and name.
    assert "Nơi nhận:" in texts
    assert "- Hội Khuyến học Cao Bằng (b/c);" in texts
    assert "- Chi hội khuyến học các thôn, tổ dân phố (p/h);" in texts
    assert "- Lưu: VT." in texts
    assert "TM. BAN CHẤP HÀNH" in texts and "PHÓ CHỦ TỊCH" in texts and "Nông Văn Hải" in texts
    assert "TM. BAN THƯỜNG VỤ" not in texts


async def test_a_province_and_the_nation_never_repeat_the_issuing_body(app: App) -> None:
    tree = await fill(app)
    rows = list(sheet(await compiled(app, tree.province)).iter_rows(values_only=True))
    assert rows[0][0] == "HỘI KHUYẾN HỌC VIỆT NAM" and rows[1][0] == "HỘI KHUYẾN HỌC CAO BẰNG"
    assert rows[2][0] == "Số: …/BC-HKH"
    texts = [v for r in rows for v in r if isinstance(v, str)]
    assert texts.count("HỘI KHUYẾN HỌC CAO BẰNG") == 1
    assert "- Trung ương Hội Khuyến học Việt Nam (b/c);" in texts
    assert "- Hội Khuyến học các xã, phường (p/h);" in texts
    assert "CHỦ TỊCH" in texts  # the title without a profile
    # The commune that has no report: blank figures, said so in the notes.
    members = table_with(rows, "Số hội viên")
    other = members.line("Xã Trường Hà")
    assert other[members.column("Số hội viên")] is None and other[-1] == "Chưa báo cáo"
    nation = list(sheet(await compiled(app, None)).iter_rows(values_only=True))
    assert nation[0][0] == "HỘI KHUYẾN HỌC VIỆT NAM" and nation[1][0] is None
    assert [v for r in nation for v in r if isinstance(v, str)].count("HỘI KHUYẾN HỌC VIỆT NAM") == 1


async def test_the_year_report_names_the_year_in_its_title(app: App) -> None:
    tree = await fill(app)
    c = await compiled(app, tree.commune, Period.parse("2026"))
    texts = texts_of(sheet(c))
    assert "Kết quả công tác khuyến học, khuyến tài, xây dựng xã hội học tập năm 2026" in texts
    assert "năm 2025" in texts  # the column it is compared with


async def test_the_docx_has_the_narrative_frame_and_the_same_tables(app: App) -> None:
    tree = await fill(app)
    c = await compiled(app, tree.commune)
    files = render(c, vi, ["docx"], Profile(signer_name="Nông Văn Hải"))
    (docx,) = files
    assert docx.filename == "bao-cao-phuong-thuc-phan-2026-H1.docx"
    assert docx.content_type.endswith("wordprocessingml.document")
    doc = open_docx(io.BytesIO(docx.data))
    headings = [(p.style.name, p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert [text for style, text in headings if style == "Heading 1"] == [
        "I. KẾT QUẢ THỰC HIỆN",
        "II. ĐÁNH GIÁ CHUNG",
        "III. PHƯƠNG HƯỚNG, NHIỆM VỤ 6 THÁNG CUỐI NĂM 2026",
        "IV. KIẾN NGHỊ, ĐỀ XUẤT",
    ]
    assert [text for style, text in headings if style == "Heading 2"] == [
        "1. Tình hình báo cáo và duyệt báo cáo",
        "2. Kết quả theo từng đơn vị",
        "3. Tiến độ thực hiện chỉ tiêu",
        "4. Báo cáo của xã",
    ]
    paragraphs = [p.text for p in doc.paragraphs]
    assert "BÁO CÁO" in paragraphs
    assert (
        "Kết quả công tác khuyến học, khuyến tài, xây dựng xã hội học tập 6 tháng đầu năm 2026" in paragraphs
    )
    # Placeholders the officer fills in.
    assert any(p.startswith("1. Ưu điểm: [") for p in paragraphs)
    # The header table: bodies and motto, number and date; the signature table at the end.
    header, *data, signature = doc.tables
    left, right = (cell.text.split("\n") for cell in header.rows[0].cells)
    assert left[:2] == ["HỘI KHUYẾN HỌC CAO BẰNG", "HỘI KHUYẾN HỌC PHƯỜNG THỤC PHÁN"]
    assert "Số: …/BC-HKH" in left
    assert right[:2] == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    assert right[-1] == "Thục Phán, ngày 20 tháng 6 năm 2026"
    recipients, signer = (cell.text.split("\n") for cell in signature.rows[0].cells)
    assert recipients[0] == "Nơi nhận:" and recipients[-1] == "- Lưu: VT."
    assert signer[:2] == ["TM. BAN CHẤP HÀNH", "CHỦ TỊCH"] and signer[-1] == "Nông Văn Hải"
    # One table per topic, the progress table, the commune's own: as in the spreadsheet.
    assert len(data) == 7
    members = next(tb for tb in data if any(c.text == "Hội viên" for c in tb.rows[0].cells))
    top, below = members.rows[0].cells, members.rows[1].cells
    assert top[0]._tc is below[0]._tc  # STT merged over the two header rows
    group = [c for c in top if c.text == "Hội viên"]
    assert len({id(c._tc) for c in group}) == 1 and len(group) == 3  # merged over three columns
    assert [c.text for c in members.rows[2].cells] == [f"({i})" for i in range(1, 8)]
    assert members.rows[3].cells[1].text == "Đơn vị tính"
    lines = {r.cells[1].text: [c.text for c in r.cells] for r in members.rows[4:]}
    assert lines["Thôn Nà Rụa"][2:6] == ["400", "50", "12,5%", "5"]
    assert lines["Tổ dân phố 1"][2:6] == ["", "", "", ""]  # no report: blank, not 0
    assert lines["Tổ dân phố 1"][-1] == "Chưa báo cáo"
    fund = next(tb for tb in data if any(c.text == "Quỹ khuyến học" for c in tb.rows[0].cells))
    assert {r.cells[1].text: r.cells[2].text for r in fund.rows[4:]}["Thôn Nà Rụa"] == "6.000.000"
