"""The period report (page, PDF, XLSX, CSV; management command) and the analysis JSON: who may
see them, what bad parameters answer, and that the PDF's text holds the cell names (Chinese)."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone
from openpyxl import load_workbook
from pypdf import PdfReader

from command.models import Incident
from command.services.dataset import dataset_load
from command.services.places import camera_save
from tests.command.test_analysis import at, incidents, ring


@pytest.fixture
def history(grid, reference, teams):
    now = timezone.now()
    load = incidents(reference["traffic_accident"], ring(6, 10.0), days_ago=2, cell=grid["A-01"], team=teams["road"])
    for i in load:  # opened two days ago, arrived after 5 min, resolved after 15 (SLA 20)
        i.opened_at = now - timedelta(days=2)
        i.arrived_at, i.resolved_at = i.opened_at + timedelta(minutes=5), i.opened_at + timedelta(minutes=15)
        i.due_at, i.status = i.opened_at + timedelta(minutes=20), "closed"
    dataset_load(incidents=load, nearest_buildings=False)
    camera_save(code="C-1", name="东向", location=at(-20, 0), heading=90.0, fov=60.0, range_m=50.0)
    return load


def _text(pdf: bytes) -> str:
    # NFKC: Noto CJK maps some ideographs to their radicals' code points (网 -> ⽹) in extracted text
    return unicodedata.normalize("NFKC", "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))


@pytest.mark.django_db
def test_the_command_writes_a_pdf_whose_text_holds_the_cell_names(history, tmp_path: Path):
    # when
    out = io.StringIO()
    call_command("analysis_report", "--days", "7", "--out", str(tmp_path), stdout=out)
    # then: four files; the PDF's text holds both cells' names and the hotspot's category
    files = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["html", "pdf", "xlsx", "zip"]
    text = _text(next(tmp_path.glob("*.pdf")).read_bytes())
    assert "A-01 网格" in text and "A-02 网格" in text
    assert "交通事故" in text  # the hotspot table, in Chinese (the default language)
    # and the XLSX and CSV tables hold the same cell rows
    workbook = load_workbook(next(tmp_path.glob("*.xlsx")))
    assert set(workbook.sheetnames) == {"cells", "hotspots", "trends", "cameras", "roads"}
    cells = list(workbook["cells"].iter_rows(min_row=2, values_only=True))
    assert tuple(cells[0][:4]) == ("A-01", "A-01 网格", "全部队伍", 6)
    assert ("A-01", "道路巡查队") in {(row[0], row[2]) for row in cells}  # a team by its name, not its code
    with zipfile.ZipFile(next(tmp_path.glob("*.zip"))) as archive:
        assert "A-02 网格" in archive.read("cells.csv").decode("utf-8-sig")


@pytest.mark.django_db
def test_the_command_refuses_bad_arguments(grid, tmp_path: Path):
    with pytest.raises(CommandError, match="--start"):
        call_command("analysis_report", "--start", "2026-13-40", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="结束必须晚于开始"):  # zh-Hans, the default language
        call_command("analysis_report", "--start", "2026-05-02", "--end", "2026-05-01", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="--formats"):
        call_command("analysis_report", "--formats", "doc", "--out", str(tmp_path))


@pytest.mark.django_db
def test_the_report_page_and_its_tables_for_an_operator(client, make_user, history):
    # given
    client.force_login(make_user("operator"))
    # when
    page = client.get("/analysis/?days=7")
    xlsx = client.get("/analysis/report.xlsx?days=7")
    csv_zip = client.get("/analysis/report.csv.zip?days=7")
    cells = client.get("/analysis/cells.json?days=7").json()
    cameras = client.get("/analysis/cameras.json?days=7").json()
    # then
    assert page.status_code == 200 and "A-01 网格" in page.content.decode()
    assert "<svg" in page.content.decode()  # the hotspot map
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert zipfile.ZipFile(io.BytesIO(csv_zip.content)).namelist()[0] == "cells.csv"
    total = next(c for c in cells["cells"] if c["code"] == "A-01" and c["team_code"] is None)
    assert (total["incidents"], total["sla_compliance"], total["median_response_min"]) == (6, 100.0, 5.0)
    assert cells["behind"] == []
    assert cameras["cameras"] == [
        {"id": cameras["cameras"][0]["id"], "code": "C-1", "name": "东向", "status": "online", "incidents": 6}
    ]


@pytest.mark.django_db
def test_the_report_asks_its_permission_and_explains_bad_periods(client, make_user, grid):
    client.force_login(make_user("police"))
    assert client.get("/analysis/").status_code == 403
    assert client.get("/analysis/cells.json").status_code == 403
    client.force_login(make_user("operator"))
    bad = client.get("/analysis/cells.json?start=yesterday")
    assert bad.status_code == 400 and bad.json()["param"] == "start"
    backwards = client.get("/analysis/cells.json?start=2026-05-02&end=2026-05-01")
    assert backwards.status_code == 400 and backwards.json()["param"] == "end"
    assert client.get("/analysis/?days=999").status_code == 400
    client.logout()
    assert client.get("/analysis/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_cameras_covering_an_incident_follow_the_layer_policy(client, make_user, history):
    # given: the first incident 10 m east of the centre, the camera 20 m west of it looking east
    incident = Incident.objects.order_by("pk").first()
    assert incident is not None
    client.force_login(make_user("police"))
    # when
    answer = client.get(f"/analysis/incidents/{incident.pk}/cameras.json")
    # then: the police see the camera (their cameras layer's fields), nearest first
    assert answer.status_code == 200
    (camera,) = answer.json()["cameras"]
    assert camera["code"] == "C-1" and camera["distance_m"] == pytest.approx(30, abs=1)
    # a missing incident and one of a viewer without the incidents layer answer alike
    missing = client.get("/analysis/incidents/999999/cameras.json")
    client.force_login(User.objects.create_user("nobody", password="pw-for-tests-1"))  # no role, no layers
    hidden = client.get(f"/analysis/incidents/{incident.pk}/cameras.json")
    assert missing.status_code == hidden.status_code == 404 and missing.json() == hidden.json()


@pytest.mark.django_db
def test_the_weekly_summary_names_the_cells_falling_behind(grid, reference, teams, tmp_path: Path):
    # given: in the last 7 days, A-01's three incidents were all resolved late (after 60 min,
    # due after 20: 0 % compliance, below the target), A-02's one in time
    now = timezone.now()
    late = incidents(reference["traffic_accident"], ring(3, 10.0), days_ago=2, cell=grid["A-01"], team=teams["road"])
    timely = incidents(reference["traffic_accident"], [(200.0, 0.0)], days_ago=2, cell=grid["A-02"], team=teams["road"])
    for i, minutes in [*((i, 60) for i in late), *((i, 10) for i in timely)]:
        i.opened_at = now - timedelta(days=2)
        i.arrived_at, i.resolved_at = i.opened_at + timedelta(minutes=5), i.opened_at + timedelta(minutes=minutes)
        i.due_at, i.status = i.opened_at + timedelta(minutes=20), "closed"
    dataset_load(incidents=[*late, *timely], nearest_buildings=False)
    # when: the weekly run (README, "Scheduled runs": Mondays, --days 7)
    out = io.StringIO()
    call_command("analysis_report", "--days", "7", "--formats", "html", "--out", str(tmp_path), stdout=out)
    # then: the summary line and the report's flag name A-01 only
    assert "behind: A-01\n" in out.getvalue()
    html = next(tmp_path.glob("*.html")).read_text()
    assert '<p class="flag">' in html
    flag = html.split('<p class="flag">', 1)[1].split("</p>", 1)[0]
    assert "A-01 网格" in flag and "A-02" not in flag
