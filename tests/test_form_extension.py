"""Adding a question or a rule is a YAML edit: a form with an extra field and a new rule, run
through a whole dialogue, asks the question, applies the rule and saves the answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from bot.domain.clock import FixedClock
from tests.support import CONTENT, START, Chat, make_app, make_contact, seed_tree

EXTRA_FIELD = {
    "key": "digital_class_households",
    "type": "integer",
    "label": {"vi": "Số hộ có người học kỹ năng số", "en": "Households with someone learning digital skills"},
    "help": {"vi": "Đếm mỗi hộ một lần.", "en": "Count each household once."},
    "min": 0,
    "max": 100000,
}
EXTRA_RULE = {
    "id": "digital_within_households",
    "severity": "hard",
    "check": "digital_class_households <= households_total",
    "message": {
        "vi": "Số hộ học kỹ năng số ({digital_class_households}) "
        "không thể lớn hơn tổng số hộ ({households_total}).",
        "en": "Households learning digital skills ({digital_class_households}) "
        "cannot exceed all households ({households_total}).",
    },
}


def extended_content(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    path = content / "forms" / "village_report.yaml"
    form = yaml.safe_load(path.read_text(encoding="utf-8"))
    form["fields"].insert(1, EXTRA_FIELD)  # right after households_total
    form["sections"][0]["fields"].append(EXTRA_FIELD["key"])  # every field is in a section
    form["rules"].append(EXTRA_RULE)
    path.write_text(yaml.safe_dump(form, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return content


async def test_an_extra_field_and_rule_run_through_the_dialogue(
    tmp_path: Path, sqlite_db: object, sqlite_url: str
) -> None:
    app = make_app(sqlite_url, FixedClock(START), content_dir=str(extended_content(tmp_path)))
    try:
        tree = await seed_tree(app)
        await make_contact(app, "u1", "village_officer", tree.village, "en")
        chat = Chat(app, "u1")
        await chat.say("/baocao")
        await chat.press("2026")
        await chat.say("100")
        assert "Question 2/26: Households with someone learning digital skills" in chat.text
        await chat.say("150")
        assert "Households learning digital skills (150) cannot exceed all households (100)" in chat.text
        await chat.say("30")
        assert "Question 3/26" in chat.text
        answers = ["400", *["0"] * 6, "chưa đăng ký", "50", "0", "bỏ qua"]
        answers += ["0", "bỏ qua", *["0"] * 10, "bỏ qua"]
        for answer in answers:
            await chat.say(answer)
        assert "Households with someone learning digital skills: 30" in chat.text
        await chat.press("confirm")
        assert "✅ Saved" in chat.text
        async with app.uow() as uow:
            row = await uow.submissions.latest("village_report", f"{tree.village.id}:2026")
            assert row is not None and row.values["digital_class_households"] == 30
    finally:
        await app.db.dispose()
