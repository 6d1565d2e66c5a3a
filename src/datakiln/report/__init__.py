"""Rendering of reports (HTML with inline SVG plots); computes nothing."""

from datakiln.report.html import render_report

__all__ = ["render_report"]
