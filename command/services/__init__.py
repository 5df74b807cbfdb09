"""Writes. Every change of state is a function here that validates, writes the domain rows
and appends its events in one transaction (DESIGN.md, "The one write path")."""
