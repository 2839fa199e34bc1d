"""Figures the reliability tests measure, printed at the end of the run (CI logs them)."""

from __future__ import annotations

REPORTS: list[tuple[str, str]] = []


def report(title: str, text: str) -> None:
    REPORTS.append((title, text))
