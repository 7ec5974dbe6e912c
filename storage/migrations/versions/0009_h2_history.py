"""second half-year village reports kept as history: the village report has H1 and the year

Until issue 9 the village report could be filed for the second half-year ("2026-H2"). There is
no such report any more (DOMAIN "Report periods"; content/schedules.yaml `only: [1]`): the year
report, closed around 30 November, covers the whole year. There is no production data yet, so
the H2 reports are not converted (their flows — fund, members, scholarships — cover July to
December, the year's cover January to the closing date) but kept as history:

* the rows stay as they are, under their H2 key, every version: readable in the database, in
  `khuyenhoc report --period 2026-H2` and in /baocaotonghop when the period is typed;
* nothing counts them: compiled reports, reminders, the digest and the rules' prev() read only
  the periods the form is filed for (H1 and the year, derived from content/schedules.yaml),
  and the submission service refuses new H2 versions (PeriodNotFiled); /baocao tells the
  officer who files the year that the H2 report is kept as history;
* this migration puts the decision on record next to the data: one audit row per H2 record,
  action "submission.kept_as_history", naming the record, its period, its versions and the id of
  its latest version.

Activity reports filed under a half-year are left alone: they are counted by their date, not by
the period they were filed under. Downgrade deletes the audit rows (no submission was changed).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTION = "submission.kept_as_history"
FORM = "village_report"
REASON = "no second half-year report: the year report covers the whole year"

submissions = sa.table(
    "submissions",
    sa.column("id", sa.Integer),
    sa.column("form_key", sa.String),
    sa.column("record_key", sa.String),
    sa.column("version", sa.Integer),
    sa.column("unit_id", sa.Integer),
    sa.column("period", sa.String),
)
audit_log = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("contact_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("unit_id", sa.Integer),
    sa.column("detail", sa.JSON),
)


def upgrade() -> None:
    """One INSERT … SELECT (so `alembic upgrade --sql` writes it too): a row per H2 record."""
    s = submissions.c
    build = (
        sa.func.json_build_object if op.get_context().dialect.name == "postgresql" else sa.func.json_object
    )
    pairs = {
        "form": s.form_key,
        "record_key": s.record_key,
        "period": s.period,
        "versions": sa.func.max(s.version),
        "latest_id": sa.func.max(s.id),
        "reason": sa.literal_column(f"'{REASON}'"),
    }
    # Constant keys as SQL text: PostgreSQL cannot type an untyped parameter inside json_build_object.
    detail = build(*(part for key, value in pairs.items() for part in (sa.literal_column(f"'{key}'"), value)))
    rows = (
        sa.select(
            sa.func.current_timestamp(),  # UTC on SQLite, as the models store it
            sa.null(),
            sa.literal_column(f"'{ACTION}'"),
            s.unit_id,
            detail,
        )
        .where(s.form_key == FORM, s.period.like("%-H2"))
        .group_by(s.form_key, s.record_key, s.unit_id, s.period)
    )
    op.execute(audit_log.insert().from_select(["at", "contact_id", "action", "unit_id", "detail"], rows))


def downgrade() -> None:
    op.execute(sa.delete(audit_log).where(audit_log.c.action == ACTION))
