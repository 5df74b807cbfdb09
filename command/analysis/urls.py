"""URLs of the analysis (mounted at /analysis/)."""

from __future__ import annotations

from django.urls import path

from command.analysis import views

urlpatterns = [
    path("", views.report_page, name="analysis_report"),
    path("report.pdf", views.report_page, {"fmt": "pdf"}, name="analysis_report_pdf"),
    path("report.xlsx", views.report_page, {"fmt": "xlsx"}, name="analysis_report_xlsx"),
    path("report.csv.zip", views.report_page, {"fmt": "csv"}, name="analysis_report_csv"),
    path("cells.json", views.cells_json, name="analysis_cells"),
    path("cameras.json", views.cameras_json, name="analysis_cameras"),
    path("incidents/<int:incident_id>/cameras.json", views.incident_cameras_json, name="analysis_incident_cameras"),
]
