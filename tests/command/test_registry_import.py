"""The registry import: CSV in UTF-8 and GBK, XLSX; the good households are loaded, every bad
row is reported with its reasons, and no household is ever half-imported."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import translation
from openpyxl import Workbook

from command.models import Event, Household, Person
from command.services.registry_import import registry_import, registry_rows_read
from tests.field_api.conftest import client_for
from tests.registry_support import Registry, id_number

HEADER = ["楼栋地址", "门牌号", "姓名", "身份证号", "联系电话", "与户主关系", "人员类型", "特殊人群"]


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """The reasons are asserted in English (zh-Hans is the default language)."""
    with translation.override("en"):
        yield


def _mistyped(number: str) -> str:
    """The same number with a wrong check character."""
    return number[:-1] + ("0" if number[-1] != "0" else "1")


def _rows() -> list[list[str]]:
    return [
        HEADER,
        # a good household of three (east building, door 301)
        ["东楼", "301", "刘备", id_number(501), "13900000001", "户主", "户籍", ""],
        ["东楼", "301", "甘夫人", id_number(502), "", "配偶", "户籍", "残疾人"],
        ["东楼", "301", "刘禅", id_number(503, "20100101"), "", "子女", "户籍", ""],
        # a good household of one, elderly living alone (west building, door 3)
        ["西楼", "3", "孙婆婆", id_number(504, "19400101"), "13900000004", "户主", "户籍", "独居老人;低保"],
        # door 302: its second row has a wrong ID number -> the whole household is rejected
        ["东楼", "302", "关羽", id_number(505), "13900000005", "户主", "租户", ""],
        ["东楼", "302", "关平", _mistyped(id_number(506)), "", "子女", "租户", ""],
        # an unknown building
        ["北楼", "1", "张飞", id_number(507), "13900000007", "户主", "户籍", ""],
        # no head in door 303
        ["东楼", "303", "赵云", id_number(508), "13900000008", "配偶", "户籍", ""],
        # a door registered already (east 101, fixture) and an unknown group
        ["东楼", "101", "马超", id_number(509), "13900000009", "户主", "户籍", ""],
        ["南楼", "9", "黄忠", id_number(510), "139000000", "户主", "户籍", "富翁"],
    ]


def _csv(rows: list[list[str]], encoding: str) -> bytes:
    return "\n".join(",".join(r) for r in rows).encode(encoding)


def _xlsx(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append([int(c) if c.isdigit() and len(c) == 11 else c for c in row])  # phones typed as numbers
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["utf-8", "gbk", "xlsx"])
def test_the_import_loads_the_good_households_and_reports_every_bad_row(registry: Registry, kind: str) -> None:
    # given
    data = _xlsx(_rows()) if kind == "xlsx" else _csv(_rows(), kind)
    households_before, persons_before = Household.objects.count(), Person.objects.count()
    # when
    report = registry_import(rows=registry_rows_read(data, filename=f"registry.{'xlsx' if kind == 'xlsx' else 'csv'}"))
    # then: the two good households, whole
    assert report.imported and (report.households, report.persons) == (2, 4)
    assert Household.objects.count() == households_before + 2
    assert Person.objects.count() == persons_before + 4
    liu = Household.objects.get(building=registry.a01_east, unit="301")
    assert (liu.members, liu.head_name, liu.phone, liu.vulnerable) == (3, "刘备", "13900000001", ["disabled"])
    sun = Household.objects.get(building=registry.a01_west, unit="3")
    assert sun.vulnerable == ["elderly_alone", "hardship"]
    # the rejected rows, each with its reason (rows numbered as in the spreadsheet)
    reasons = {r.row: " ".join(r.reasons) for r in report.rejected}
    assert sorted(reasons) == [6, 7, 8, 9, 10, 11]
    assert "check character" in reasons[7] or "date of birth" in reasons[7]
    assert "Another row of this household was rejected (row 7)" in reasons[6]
    assert "no building at 北楼" in reasons[8]
    assert "exactly one head" in reasons[9]
    assert "registered already" in reasons[10]
    assert "phone number" in reasons[11] and "富翁" in reasons[11]
    # no half household: nothing of door 302
    assert not Household.objects.filter(building=registry.a01_east, unit="302").exists()
    assert not Person.objects.filter(full_name="关羽").exists()


def test_strict_and_dry_run_import_nothing(registry: Registry) -> None:
    rows = registry_rows_read(_csv(_rows(), "utf-8"))
    before = (Household.objects.count(), Person.objects.count(), Event.objects.count())
    strict = registry_import(rows=rows, strict=True)
    dry = registry_import(rows=rows, dry_run=True)
    assert not strict.imported and not dry.imported and dry.households == 2 and len(strict.rejected) == 6
    assert (Household.objects.count(), Person.objects.count(), Event.objects.count()) == before


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        ("姓名,电话\n张三,1".encode(), "missing"),
        (b"\x00\x01\x02binary", "not a CSV"),
        (b"PK\x03\x04not really a zip", "XLSX"),
        (b"\xff\xfe\xfa\xfb" * 10, "neither UTF-8 nor GBK"),
    ],
)
def test_an_unreadable_file_is_refused_with_its_reason(db: None, data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        registry_import(rows=registry_rows_read(data))


def test_the_import_over_rest_and_the_command(
    registry: Registry, worker_a01: User, make_user: Callable[..., User], tmp_path
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("registry.csv", _csv(_rows(), "gbk"), content_type="text/csv")
    assert client_for(worker_a01).post("/api/v1/registry/import/", {"file": upload}).status_code == 403
    upload.seek(0)
    answer = client_for(make_user("operator")).post("/api/v1/registry/import/", {"file": upload, "dry_run": "true"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["households"] == 2 and not body["imported"] and len(body["rejected"]) == 6
    bad = client_for(make_user("operator")).post("/api/v1/registry/import/", {"file": SimpleUploadedFile("x.csv", b"")})
    assert bad.status_code == 400 and "file" in bad.json()
    path = tmp_path / "registry.csv"
    path.write_bytes(_csv(_rows(), "gbk"))
    out = io.StringIO()
    call_command("import_registry", str(path), "--encoding", "gbk", stdout=out)
    assert "2 households with 4 persons imported; 6 rows rejected" in out.getvalue()
