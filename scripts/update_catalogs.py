"""Extract the bot's messages and update the gettext catalogs.

    .venv/bin/python scripts/update_catalogs.py          # write messages.pot, merge vi and en
    .venv/bin/python scripts/update_catalogs.py --check  # write nothing; exit 1 on any problem

A message is the string literal (adjacent literals count as one, as in Python) passed first to
any translator call in bot/**/*.py: `t("...")`, `N_("...")`, `<anything>.t("...")` (`ctx.t`,
`self.t`), a translator made in place (`translator(locale)("...")`, `Translator(locale)("...")`),
or a name that holds one, whatever it is called: bound from `translator(...)`, `Translator(...)` or
`<anything>.t`, or annotated `Translator` (`tr: Translator`, `def f(en: Translator)`). The
extraction reads the syntax tree with `ast`: Babel's tokenizing extractor does match `ctx.t(...)`
(but not `translator(locale)(...)`, which is how the broadcast header escaped it), and it turns
`t("a" if x else "b")` into the msgid "ab" and `t("x" + y)` into "x". A `t(f"...")` cannot be
translated and is reported as a problem.

Updating writes bot/domain/locales/messages.pot and merges it into vi and en messages.po with Babel:
existing translations are kept, new msgids get an empty msgstr (en: msgstr = msgid, since the
msgids are English), a changed msgid gets the old translation marked fuzzy (which counts as
missing until a translator checks it and removes the flag), and msgids no longer in the code are
dropped. Then translate the empty and fuzzy entries of vi/LC_MESSAGES/messages.po.

--check reports msgids missing from the catalogs or stale in them, untranslated or fuzzy
entries, and translations whose {placeholders} differ from the msgid. tests/test_i18n.py runs
the same checks.
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import string
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bot"
LOCALES = SOURCE / "domain" / "locales"
POT = LOCALES / "messages.pot"
LOCALE_NAMES = ("vi", "en")
SOURCE_LOCALE = "en"  # msgids are English: its catalog starts as msgstr = msgid
MARKERS = {"t", "N_"}
FACTORIES = {"translator", "Translator"}  # calls that make a translator
_VOLATILE = (b'"POT-Creation-Date:', b'"PO-Revision-Date:')

Locations = dict[str, list[tuple[str, int]]]  # msgid -> [(file relative to ROOT, line)]


def extract(source: Path = SOURCE) -> tuple[Locations, list[str]]:
    """Every msgid in source/**/*.py with where it occurs, and the marked calls that are wrong."""
    found: Locations = {}
    problems: list[str] = []
    for path in sorted(source.rglob("*.py")):
        where = path.relative_to(source.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = MARKERS | _translator_names(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args and _is_marker(node.func, names)):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, []).append((where, node.lineno))
            elif isinstance(arg, ast.JoinedStr):
                problems.append(f"{where}:{node.lineno}: f-string in t(): use t('...{{x}}', x=...)")
    _extract_templates(source, found)
    for locations in found.values():
        locations.sort()
    return dict(sorted(found.items(), key=lambda item: item[1][0])), problems


def _extract_templates(source: Path, found: Locations) -> None:
    """`t("...")` in the Jinja2 templates (bot/**/templates/*.html), with Jinja2's own extractor:
    the staff console's words live in the same catalogs as the chat's. A call on a variable
    (`t(item.label)`) translates a msgid marked where the value is written (N_ in Python)."""
    from jinja2.ext import babel_extract

    for path in sorted(source.rglob("templates/*.html")):
        where = path.relative_to(source.parent).as_posix()
        with path.open("rb") as f:
            for lineno, _func, message, _comments in babel_extract(f, ["t"], [], {}):
                if isinstance(message, str):
                    found.setdefault(message, []).append((where, lineno))
                elif isinstance(message, tuple) and message and isinstance(message[0], str):
                    found.setdefault(message[0], []).append((where, lineno))


def _makes_translator(node: ast.expr | None) -> bool:
    """`translator(...)`, `Translator(...)` (also as `i18n.translator(...)`) or `<anything>.t`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "t"
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name in FACTORIES


def _is_translator_type(node: ast.expr | None) -> bool:
    """An annotation naming Translator: `Translator`, `i18n.Translator`, "Translator"."""
    if isinstance(node, ast.Name):
        return node.id == "Translator"
    if isinstance(node, ast.Attribute):
        return node.attr == "Translator"
    return isinstance(node, ast.Constant) and node.value == "Translator"


def _translator_names(tree: ast.AST) -> set[str]:
    """The names a module binds to a translator, by assignment or by annotation."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _makes_translator(node.value):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if _is_translator_type(node.annotation) or _makes_translator(node.value):
                names.add(node.target.id)
        elif isinstance(node, ast.arg) and _is_translator_type(node.annotation):
            names.add(node.arg)
    return names


def _is_marker(func: ast.expr, names: set[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in names
    if isinstance(func, ast.Attribute):
        return func.attr == "t"
    return _makes_translator(func)  # translator(locale)("...")


def placeholders(text: str) -> set[str]:
    """The str.format fields of a message: {'n', 'total'} for 'Question {n}/{total}'."""
    return {
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(text)
        if field is not None
    }


def template(messages: Locations) -> Catalog:
    pot = Catalog(
        project="Khuyến học Bot",
        version="0.1",
        copyright_holder="Khuyến học Bot",
        header_comment="# Messages of Khuyến học Bot. Generated by scripts/update_catalogs.py: do not edit.",
        fuzzy=False,
    )
    for msgid, locations in messages.items():
        pot.add(msgid, locations=locations)
    return pot


def merge(locale: str, pot: Catalog) -> Catalog:
    """The locale's catalog updated to the template, keeping its translations."""
    path = po_path(locale)
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
    else:
        catalog = Catalog(
            locale=locale,
            project=pot.project,
            version=pot.version,
            copyright_holder=pot.copyright_holder,
            fuzzy=False,
        )
    catalog.update(copy.deepcopy(pot))  # update() adopts the template's Message objects
    catalog.obsolete.clear()
    for message in catalog:
        # "#| msgid" (the msgid before a change) matters only while the entry is fuzzy; merges
        # by other tools left it behind as "# | msgid" comments, which only add noise.
        message.user_comments = [c for c in message.user_comments if not c.startswith("| msgid")]
        if not message.fuzzy:
            message.previous_id = []
    if locale == SOURCE_LOCALE:
        for message in catalog:
            if message.id and (not message.string or message.fuzzy):
                message.string = message.id
                message.flags.discard("fuzzy")
                message.previous_id = []
    return catalog


def po_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / "messages.po"


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def check(messages: Locations, problems: Iterable[str] = ()) -> list[str]:
    """What is wrong with the catalogs compared with the code; empty when all is well."""
    out = list(problems)
    targets = [("pot", POT, None)] + [(lc, po_path(lc), lc) for lc in LOCALE_NAMES]
    for label, path, locale in targets:
        if not path.exists():
            out.append(f"{label}: {path.relative_to(ROOT)} is missing")
            continue
        catalog = read(path, locale)
        ids = {str(m.id) for m in catalog if m.id}
        out += [f"{label}: not in the catalog: {m!r}" for m in messages if m not in ids]
        out += [f"{label}: stale, not in the code: {m!r}" for m in sorted(ids - set(messages))]
        if locale is None:
            continue
        for m in catalog:
            if not m.id or m.id not in messages:
                continue
            if not m.string or m.fuzzy:
                out.append(f"{label}: {'fuzzy' if m.string else 'untranslated'}: {m.id!r}")
            elif placeholders(str(m.string)) != placeholders(str(m.id)):
                out.append(f"{label}: placeholders differ: {m.id!r} -> {m.string!r}")
    return out


def write(path: Path, catalog: Catalog) -> bool:
    """Write the catalog unless only its dates would change. True when written."""
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, include_lineno=False, include_previous=True, ignore_obsolete=True)
    new = buf.getvalue()
    old = path.read_bytes() if path.exists() else b""

    def stable(data: bytes) -> list[bytes]:
        return [line for line in data.splitlines() if not line.startswith(_VOLATILE)]

    if stable(old) == stable(new):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(new)
    return True


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on problems")
    args = parser.parse_args(argv)
    messages, problems = extract()
    if not args.check:
        pot = template(messages)
        outputs = [(POT, pot)] + [(po_path(lc), merge(lc, pot)) for lc in LOCALE_NAMES]
        for path, catalog in outputs:
            if write(path, catalog):
                _say(f"updated {path.relative_to(ROOT)}")
    report = check(messages, problems)
    for line in report:
        _say(line)
    _say(f"{len(messages)} msgids, {len(report)} problems")
    return 1 if report and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
