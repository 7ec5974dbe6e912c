"""Targets per province and year, with a lower set for designated disadvantaged communes.

The figures are data (content/targets.yaml): national defaults from the Prime Minister's
decisions, laid under each province's own plan, so that a province changes a target without a
release and a report of 2027 still finds the 2025 targets until the 2030 ones apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TARGETS_FILE = "targets.yaml"

INDICATORS = (
    "learning_families",
    "learning_clans",
    "learning_communities",
    "learning_units",
    "learning_citizens",
    "membership",
    "fund_per_person_vnd",
)


class TargetsError(ValueError):
    """content/targets.yaml is not as described at its top."""


@dataclass(frozen=True)
class TargetSet:
    """The targets that apply to one unit in one year."""

    values: dict[str, float]
    year: int | None = None  # the entry the values came from
    disadvantaged: bool = False
    sources: tuple[str, ...] = ()

    definitions: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)

    def get(self, indicator: str) -> float | None:
        return self.values.get(indicator)

    def definition(self, indicator: str, locale: str) -> str | None:
        """How the indicator is computed, in `locale` (Vietnamese unless English is asked for)."""
        texts = self.definitions.get(indicator)
        if not texts:
            return None
        language = "en" if locale.replace("-", "_").split("_", 1)[0].lower() == "en" else "vi"
        return texts.get(language) or texts.get("vi")


@dataclass(frozen=True)
class _Layer:
    years: dict[int, dict[str, float]]
    source: str = ""

    def at(self, year: int) -> tuple[int | None, dict[str, float]]:
        """The entry of the latest year ≤ `year`, else the earliest one."""
        if not self.years:
            return None, {}
        earlier = [y for y in self.years if y <= year]
        chosen = max(earlier) if earlier else min(self.years)
        return chosen, self.years[chosen]


@dataclass(frozen=True)
class _Province:
    standard: _Layer
    lower: _Layer
    disadvantaged_communes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class TargetBook:
    national: _Layer
    national_lower: _Layer
    provinces: dict[str, _Province]
    # How a rate is computed, by indicator and language: printed beside its target.
    definitions: dict[str, dict[str, str]] = field(default_factory=dict)

    def is_disadvantaged(self, province_code: str | None, commune_code: str | None) -> bool:
        province = self.provinces.get(province_code or "")
        return bool(province and commune_code and commune_code in province.disadvantaged_communes)

    def for_unit(
        self, year: int, province_code: str | None = None, commune_code: str | None = None
    ) -> TargetSet:
        """The targets of a province (or, with `commune_code`, of a commune and its villages)."""
        province = self.provinces.get(province_code or "")
        used_year, values = self.national.at(year)
        merged = dict(values)
        sources = [self.national.source]
        if province is not None:
            y, own = province.standard.at(year)
            if own:
                merged.update(own)
                used_year = y if used_year is None or (y is not None and y > used_year) else used_year
                sources.append(province.standard.source)
        lower = self.is_disadvantaged(province_code, commune_code)
        if lower:
            merged.update(self.national_lower.at(year)[1])
            if province is not None:
                merged.update(province.lower.at(year)[1])
                sources.append(province.lower.source)
        return TargetSet(merged, used_year, lower, tuple(s for s in sources if s), self.definitions)


def _layer(data: Any, where: str) -> _Layer:
    if data is None:
        return _Layer({})
    if not isinstance(data, dict):
        raise TargetsError(f"{where}: expected a mapping")
    years: dict[int, dict[str, float]] = {}
    for year, values in (data.get("years") or {}).items():
        if not isinstance(values, dict):
            raise TargetsError(f"{where} {year}: expected indicator: value")
        unknown = set(values) - set(INDICATORS)
        if unknown:
            raise TargetsError(f"{where} {year}: unknown indicators {sorted(unknown)}")
        years[int(year)] = {str(k): float(v) for k, v in values.items()}
    return _Layer(years, str(data.get("source") or ""))


def parse_targets(data: dict[str, Any]) -> TargetBook:
    national = data.get("national") or {}
    provinces: dict[str, _Province] = {}
    for code, entry in (data.get("provinces") or {}).items():
        entry = entry or {}
        provinces[str(code).zfill(2)] = _Province(
            standard=_layer(entry, f"province {code}"),
            lower=_layer(entry.get("disadvantaged"), f"province {code} disadvantaged"),
            disadvantaged_communes=frozenset(
                str(c).zfill(5) for c in entry.get("disadvantaged_communes") or ()
            ),
        )
    return TargetBook(
        national=_layer(national, "national"),
        national_lower=_layer(national.get("disadvantaged"), "national disadvantaged"),
        provinces=provinces,
        definitions=_definitions(data.get("definitions")),
    )


def _definitions(data: Any) -> dict[str, dict[str, str]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TargetsError("definitions: expected {indicator: {vi: ..., en: ...}}")
    out: dict[str, dict[str, str]] = {}
    for indicator, texts in data.items():
        if indicator not in INDICATORS:
            raise TargetsError(f"definitions: unknown indicator {indicator!r}")
        if not isinstance(texts, dict) or not all(isinstance(texts.get(k), str) for k in ("vi", "en")):
            raise TargetsError(f"definitions {indicator}: expected {{vi: ..., en: ...}}")
        out[str(indicator)] = {"vi": texts["vi"].strip(), "en": texts["en"].strip()}
    return out


@lru_cache(maxsize=8)
def load_targets(content_dir: Path) -> TargetBook:
    """The targets of a content folder (cached: content changes need a restart)."""
    path = Path(content_dir) / TARGETS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return parse_targets(data or {})
