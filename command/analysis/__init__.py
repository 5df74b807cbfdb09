"""Analysis of the incident history: hotspots, hex bins, camera coverage, grid-cell performance, period reports."""
