"""The initial registry from a spreadsheet: CSV (UTF-8 or GBK) or XLSX, one row per person.

Rows are grouped into households by building and door number. Every row is checked (the same
checks as a visit: command/services/registry.py), then every household (one head, no ID number
twice, none registered already, the door not registered yet). A household is imported whole or
not at all: when one of its rows is bad, its other rows are reported too ("another row of this
household was rejected"), so no household is ever half-imported. The good households go in, in
one transaction, and the report lists each rejected row with its reasons; ``strict`` imports
nothing when any row is rejected, ``dry_run`` only reports.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.models import Building, Household, Person
from command.services.registry import household_derive, person_values_check, unit_check

MAX_ROWS = 100_000

# Column names as registries write them (Chinese first), and the field each one fills.
COLUMNS: dict[str, tuple[str, ...]] = {
    "building": ("楼栋地址", "建筑地址", "地址", "楼栋", "building_address", "address", "building"),
    "building_id": ("建筑编号", "building_id"),
    "unit": ("门牌号", "门牌", "户号", "房号", "unit", "door"),
    "full_name": ("姓名", "full_name", "name"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "id_number"),
    "phone": ("联系电话", "电话", "手机", "手机号", "phone"),
    "relation": ("与户主关系", "关系", "relation"),
    "resident_type": ("人员类型", "户籍类型", "类型", "resident_type"),
    "vulnerable": ("特殊人群", "重点人群", "vulnerable"),
}
REQUIRED = ("unit", "full_name", "relation", "resident_type")
VALUES: dict[str, dict[str, str]] = {
    "relation": {
        "户主": "head",
        "本人": "head",
        "配偶": "spouse",
        "妻子": "spouse",
        "丈夫": "spouse",
        "夫妻": "spouse",
        "子女": "child",
        "儿子": "child",
        "女儿": "child",
        "子": "child",
        "女": "child",
        "父母": "parent",
        "父亲": "parent",
        "母亲": "parent",
        "孙子女": "grandchild",
        "孙子": "grandchild",
        "孙女": "grandchild",
        "外孙": "grandchild",
        "外孙女": "grandchild",
        "祖父母": "grandparent",
        "祖父": "grandparent",
        "祖母": "grandparent",
        "兄弟姐妹": "sibling",
        "兄弟": "sibling",
        "姐妹": "sibling",
        "其他": "other",
        "合租": "other",
    },
    "resident_type": {
        "户籍": "registered",
        "户籍人口": "registered",
        "常住": "registered",
        "本地": "registered",
        "租户": "tenant",
        "租住": "tenant",
        "流动人口": "tenant",
        "外来": "tenant",
    },
    "vulnerable": {
        "独居老人": "elderly_alone",
        "空巢老人": "elderly_alone",
        "退役军人": "veteran",
        "失业": "unemployed",
        "失业人员": "unemployed",
        "困难家庭": "hardship",
        "低保": "hardship",
        "低保户": "hardship",
        "残疾": "disabled",
        "残疾人": "disabled",
    },
}
_SPLIT = re.compile(r"[;,，；、/\s]+")


def import_max_bytes() -> int:
    return int(getattr(settings, "REGISTRY_IMPORT_MAX_BYTES", 20 * 1024 * 1024))


@dataclass
class Rejected:
    row: int  # the spreadsheet's row number (the header is row 1 of its sheet, or wherever it stood)
    reasons: list[str]


@dataclass
class ImportReport:
    rows: int = 0
    households: int = 0  # imported (or, in a dry run, that would be)
    persons: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    imported: bool = False  # False: a dry run, or strict with a rejected row

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "households": self.households,
            "persons": self.persons,
            "imported": self.imported,
            "rejected": [{"row": r.row, "reasons": r.reasons} for r in self.rejected],
        }


# --- reading the file -----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a cell: 13812345678.0
    return str(value).strip()


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except LookupError:
            raise ValidationError({"encoding": [_("Unknown encoding %s; use utf-8 or gbk.") % encoding]}) from None
        except UnicodeDecodeError:
            raise ValidationError({"file": [_("The file is not %s text.") % encoding]}) from None
    for candidate in ("utf-8-sig", "gb18030"):  # gb18030 reads every GBK file
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise ValidationError({"file": [_("The file is neither UTF-8 nor GBK text.")]})


def registry_rows_read(data: bytes, *, filename: str = "", encoding: str | None = None) -> list[tuple[int, list[str]]]:
    """The rows of the first sheet (XLSX) or of the CSV text, as (row number, cells), header
    first. ValidationError for a file that cannot be read, with the reason."""
    if len(data) > import_max_bytes():
        raise ValidationError({"file": [_("The file is larger than %s bytes.") % import_max_bytes()]})
    rows: list[tuple[int, list[str]]] = []
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # a zip that is not a workbook: openpyxl raises many kinds
            raise ValidationError({"file": [_("This is not an XLSX workbook (%s).") % type(exc).__name__]}) from None
        try:
            sheet = book.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                if len(rows) > MAX_ROWS:
                    break
                cells = [_cell(v) for v in values]
                if any(cells):
                    rows.append((number, cells))
        finally:
            book.close()
    else:
        if b"\x00" in data[:4096]:
            raise ValidationError({"file": [_("This is not a CSV text file; send CSV or XLSX.")]})
        text = _decode(data, encoding)
        first = text.split("\n", 1)[0]
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        try:
            for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
                if len(rows) > MAX_ROWS:
                    break
                cells = [c.strip() for c in cells]
                if any(cells):
                    rows.append((number, cells))
        except csv.Error as exc:
            raise ValidationError({"file": [_("The CSV cannot be read: %s.") % exc]}) from None
    if len(rows) > MAX_ROWS:
        raise ValidationError({"file": [_("At most %s rows per import.") % MAX_ROWS]})
    if not rows:
        raise ValidationError({"file": [_("The file is empty.")]})
    return rows


def _header(cells: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    aliases = {alias.lower(): key for key, names in COLUMNS.items() for alias in names}
    for index, name in enumerate(cells):
        key = aliases.get(name.strip().lower())
        if key is not None and key not in found:
            found[key] = index
    missing = [COLUMNS[k][0] for k in REQUIRED if k not in found]
    if "building" not in found and "building_id" not in found:
        missing.insert(0, COLUMNS["building"][0])
    if missing:
        raise ValidationError({"file": [_("The first row must name the columns; missing: %s.") % ", ".join(missing)]})
    return found


# --- checking and importing -----------------------------------------------------------------------


def _mapped(kind: str, raw: str) -> str:
    value = raw.strip()
    return VALUES[kind].get(value, value.lower())


@dataclass
class _Row:
    number: int
    building: Building | None
    unit: str
    values: dict[str, Any]
    reasons: list[str]


def _row_check(
    number: int, cells: list[str], columns: dict[str, int], buildings: dict[str, Building], by_id: dict[int, Building]
) -> _Row:
    def get(key: str) -> str:
        index = columns.get(key)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    reasons: list[str] = []
    building = None
    if "building_id" in columns and get("building_id"):
        raw = get("building_id")
        building = by_id.get(int(raw)) if raw.isdigit() else None
        if building is None:
            reasons.append(
                _("%(column)s: no building %(value)s.") % {"column": COLUMNS["building_id"][0], "value": raw}
            )
    else:
        address = get("building")
        building = buildings.get(address)
        if building is None:
            reasons.append(
                _("%(column)s: no building at %(value)s.") % {"column": COLUMNS["building"][0], "value": address or "—"}
            )
    unit = get("unit")
    try:
        unit = unit_check(unit)
    except ValidationError as exc:
        reasons.append(f"{COLUMNS['unit'][0]}: {' '.join(exc.messages)}")
    values: dict[str, Any] = {
        "full_name": get("full_name"),
        "relation": _mapped("relation", get("relation")),
        "resident_type": _mapped("resident_type", get("resident_type")),
    }
    if get("id_number"):
        values["id_number"] = get("id_number")
    if get("phone"):
        values["phone"] = get("phone")
    flags = [f for f in _SPLIT.split(get("vulnerable")) if f and f not in ("无", "-", "否")]
    values["vulnerable"] = [_mapped("vulnerable", f) for f in flags]
    try:
        values = person_values_check(values)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            reasons.append(f"{COLUMNS.get(key, (key,))[0]}: {' '.join(messages)}")
    return _Row(number, building, unit, values, reasons)


def registry_import(
    *, rows: list[tuple[int, list[str]]], actor_id: int | None = None, strict: bool = False, dry_run: bool = False
) -> ImportReport:
    """Check ``rows`` (header first, as ``registry_rows_read`` gives them) and import the good
    households in one transaction; see the module's doc."""
    _header_row, header = rows[0]
    columns = _header(header)
    buildings = {b.address: b for b in Building.objects.all()}
    by_id = {b.pk: b for b in buildings.values()}
    checked = [_row_check(n, cells, columns, buildings, by_id) for n, cells in rows[1:]]
    report = ImportReport(rows=len(checked))
    groups: dict[tuple[int, str], list[_Row]] = {}
    for row in checked:
        key = (row.building.pk if row.building else -row.number, row.unit or f"#{row.number}")
        groups.setdefault(key, []).append(row)
    numbers = [r.values.get("id_number") for r in checked if r.values.get("id_number")]
    registered = set(Person.objects.filter(id_number__in=numbers).values_list("id_number", flat=True))
    in_file: dict[str, int] = {}
    for row in checked:
        number = row.values.get("id_number")
        if number:
            in_file[number] = in_file.get(number, 0) + 1
    existing_units = set(
        Household.objects.filter(building_id__in={k[0] for k in groups if k[0] > 0}).values_list("building_id", "unit")
    )
    good: list[tuple[Building, str, list[_Row]]] = []
    for (building_id, unit), members in groups.items():
        for row in members:
            number = row.values.get("id_number")
            if number in registered:
                row.reasons.append(_("%s: this ID number is registered already.") % COLUMNS["id_number"][0])
            elif number and in_file[number] > 1:
                row.reasons.append(_("%s: this ID number is in the file twice.") % COLUMNS["id_number"][0])
        heads = [r for r in members if r.values.get("relation") == Person.Relation.HEAD]
        problems: list[str] = []
        if (building_id, unit) in existing_units:
            problems.append(_("This door is registered already; update it with a visit."))
        if len(heads) != 1 and not any(r.reasons for r in members):
            problems.append(_("A household needs exactly one head (户主); this one has %s.") % len(heads))
        bad = [r for r in members if r.reasons]
        if problems:
            for row in members:
                row.reasons.extend(problems)
        elif bad:
            first = ", ".join(str(r.number) for r in bad)
            for row in members:
                if not row.reasons:
                    row.reasons.append(_("Another row of this household was rejected (row %s).") % first)
        else:
            assert members[0].building is not None
            good.append((members[0].building, unit, members))
    report.rejected = sorted((Rejected(r.number, r.reasons) for r in checked if r.reasons), key=lambda r: r.row)
    report.households = len(good)
    report.persons = sum(len(m) for _b, _u, m in good)
    if dry_run or (strict and report.rejected) or not good:
        return report
    _write(good, actor_id)
    report.imported = True
    return report


@transaction.atomic
def _write(good: Iterable[tuple[Building, str, list[_Row]]], actor_id: int | None) -> None:
    now = timezone.now()
    households: list[Household] = []
    persons_of: list[list[Person]] = []
    for building, unit, members in good:
        persons = [
            Person(**{"id_number": "", "phone": "", "vulnerable": [], **row.values}, updated_at=now) for row in members
        ]
        household = Household(building=building, unit=unit, updated_at=now)
        household_derive(household, persons)
        households.append(household)
        persons_of.append(persons)
    Household.objects.bulk_create(households, batch_size=2000)
    persons_all: list[Person] = []
    for household, persons in zip(households, persons_of, strict=True):
        for person in persons:
            person.household = household
        persons_all.extend(persons)
    Person.objects.bulk_create(persons_all, batch_size=2000)
    building_ids = sorted({h.building_id for h in households})
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE command_building b SET household_count = "
            "(SELECT count(*) FROM command_household h WHERE h.building_id = b.id) WHERE b.id = ANY(%s)",
            [building_ids],
        )
    for layer, count in (
        ("households", len(households)),
        ("persons", len(persons_all)),
        ("buildings", len(building_ids)),
    ):
        event_append(
            kind="layer.reloaded",
            layer=layer,
            object_id="*",
            actor_id=actor_id,
            payload={"id": "*", "properties": {layer: count}},
        )
