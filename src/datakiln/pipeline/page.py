"""The run page: one HTML file linking each stage's report, plus ``run.json``.

The output folder is datakiln's own: it is created with a ``_datakiln-run.json`` mark, and an
existing folder without the mark that holds files is refused (never written into). Stage
reports are copied from the cache into ``<output_dir>/<stage>/`` so the page keeps working
after the cache evicts the entries.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

from datakiln.errors import OutputExistsError

__all__ = ["own_folder", "write_run_page"]

MARK = "_datakiln-run.json"


def own_folder(folder: Path) -> None:
    """Create ``folder`` with datakiln's mark, or accept it if marked or empty."""
    if folder.exists() and not (folder / MARK).exists() and any(folder.iterdir()):
        raise OutputExistsError(f"the pipeline's output_dir {str(folder)!r} holds files datakiln did not "
                                "write; choose another output_dir")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text(json.dumps({"datakiln": {"kind": "pipeline-run"}}), encoding="utf-8")


def _atomic(target: Path, write: Any) -> None:
    """Write one file of the run folder atomically (the folder is datakiln's: own_folder checked it)."""
    from datakiln.io.write import write_file_atomic

    write_file_atomic(target, write, is_own=lambda _path: True)


def write_run_page(report: Any, folder: Path) -> Path:
    """Write ``run.html`` and ``run.json`` into ``folder``; returns the page's path."""
    from datakiln import __version__
    from datakiln.io._output import generator_meta

    own_folder(folder)
    rows = []
    for stage in report.stages:
        links = []
        for name, source in stage.reports.items():
            target_dir = folder / stage.name
            target_dir.mkdir(exist_ok=True)
            target = target_dir / name
            _atomic(target, lambda temp, src=source: shutil.copyfile(src, temp))
            stage.reports[name] = str(target)
            href = html.escape(f"{stage.name}/{name}", quote=True)
            links.append(f'<a href="{href}">{html.escape(name)}</a>')
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
            stage.name, stage.kind, stage.status, f"{stage.seconds:.2f}",
            "" if stage.rows is None else f"{stage.rows:,}")) + f"<td>{' · '.join(links)}</td></tr>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'>{generator_meta()}"
            f"<title>datakiln pipeline run</title><style>body{{font-family:sans-serif;margin:2em}}"
            f"td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>"
            f"<h1>Pipeline run</h1><p>{report.computed} of {len(report.stages)} stages computed in "
            f"{report.seconds:.2f} s (datakiln {html.escape(__version__)}).</p><table><tr><th>stage</th>"
            f"<th>kind</th><th>status</th><th>seconds</th><th>rows</th><th>reports</th></tr>"
            f"{''.join(rows)}</table></body></html>")
    page_path = folder / "run.html"
    _atomic(page_path, lambda temp: temp.write_text(page, encoding="utf-8"))
    data = json.dumps({"datakiln": {"kind": "pipeline-run", "version": __version__}, **report.to_dict()},
                      indent=2, default=str)
    _atomic(folder / "run.json", lambda temp: temp.write_text(data, encoding="utf-8"))
    return page_path
