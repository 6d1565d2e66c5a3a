"""Render an HTML report in headless Chromium: screenshot, console errors, visible plots.

Usage: python scripts/check_report.py report.html [--screenshot out.png]
Exit status 0 when the page rendered with no console error and the plots' colours are on
the screenshot; 1 otherwise (the reason is printed). Needs Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REAL_RGB, SYNTH_RGB = (0x2F, 0x6D, 0xB3), (0xE0, 0x81, 0x2F)


def chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def render(html: Path, screenshot: Path, width: int = 1280, height: int = 2400) -> tuple[str, str]:
    """Screenshot ``html``; return (DOM after scripts ran, Chromium's log)."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    common = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
              f"--window-size={width},{height}", "--virtual-time-budget=3000"]
    shot = subprocess.run([*common, f"--screenshot={screenshot}", html.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120)
    return dom.stdout, shot.stderr + dom.stderr


def console_errors(log: str) -> list[str]:
    """Lines where the page logged an error or threw (Chromium's ``CONSOLE`` / ``Uncaught``)."""
    return [line for line in log.splitlines()
            if re.search(r"Uncaught|CONSOLE\(\d+\).*(error|Error)", line)]


def colour_share(png: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> float:
    """Share of the screenshot's pixels within ``tolerance`` of ``rgb``."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16).reshape(-1, 3)
    near = (np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=1)
    return float(near.mean())


def check(html: Path, screenshot: Path) -> list[str]:
    """Problems found (empty when the report renders well)."""
    dom, log = render(html, screenshot)
    problems = [f"console: {line}" for line in console_errors(log)]
    if not screenshot.exists():
        return [*problems, "no screenshot was written"]
    if "<svg" not in dom or 'id="columns"' not in dom:
        problems.append("the rendered page lacks its plots or the columns table")
    for name, rgb in (("real", REAL_RGB), ("synthetic", SYNTH_RGB)):
        share = colour_share(screenshot, rgb)
        if share < 0.001:
            problems.append(f"the {name} colour covers only {share:.4%} of the screenshot: plots not visible")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    target = args.screenshot or Path(tempfile.mkdtemp()) / "report.png"
    problems = check(args.html, target)
    for problem in problems:
        print(problem)
    print(f"screenshot: {target}; {'OK' if not problems else 'problems found'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
