"""The pages people read, in a real headless Chromium: a published bundle's index.html and the
study's Snakemake HTML report (issue 25, item 4).

A small study goes through the real workflow from cells written by tests/fakesets.py (no timing):
this machine ("m1": cpu and mps, as on a Mac) and an included result set ("h100") one of whose
cells failed with an error text full of markup, as a hostile bundle could carry. In the browser's
DOM we check that lists, code spans, tables and images render (images decoded, not broken), that
the report's summary is there, and that nothing hostile ran (no dialog, no script, no live
javascript: link, the markup shown as text). Screenshots are written beside the study (and to
$SPEEDATLAS_SCREENSHOTS when set) for a person to look at.

Skipped when no Chromium is installed (`apt-get install chromium`; .ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import fakesets
import pytest
from browser import Browser, executable
from conftest import REPO, snakemake, write_config

CHROMIUM = executable()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed: apt-get install chromium "
                                                "(or set SPEEDATLAS_CHROMIUM to its path)"),
]

HOSTILE = ("RuntimeError: <script>alert('script ran')</script> <img src=x onerror=\"alert('onerror ran')\"> "
           "[click me](javascript:alert('link ran')) `x"
           " y` and a long reason that goes on past one hundred and sixty characters so that the old "
           "report would have cut it in the middle of a word, which it must not do anymore: the end.")
LOCAL = {
    "machine": "m1", "devices": ["cpu", "mps"], "models": ["resnet18"], "batch_sizes": [2, 4],
    "modes": ["train", "infer"], "input_size": 32, "num_classes": 4, "publish_name": "m1-browser",
    "timing": {"warmup": 1, "repeats": 6, "steps_per_repeat": 1, "processes": 1}, "cpu_threads": 1,
    "dtype_support": {"enabled": False},
}
SECONDS = {(device, "resnet18", mode, batch): (0.02 if device == "cpu" else 0.005) * batch * (3 if mode == "train" else 1)
           for device in ("cpu", "mps") for mode in ("train", "infer") for batch in (2, 4)}
OTHER = {(device, "resnet18", mode, batch): (0.01 if device == "cpu" else 0.0005) * batch * (3 if mode == "train" else 1)
         for device in ("cpu", "cuda") for mode in ("train", "infer") for batch in (2, 4)}

# What a rendered report holds, counted in the page (run in the page or in its frame).
INSPECT = """(() => {
  const text = document.body.innerText;
  const summary = [...document.querySelectorAll('h2')].find(h => h.textContent.trim() === 'Summary');
  const list = summary && summary.nextElementSibling;
  return {
    text,
    summaryItems: list && list.tagName === 'UL' ? list.children.length : 0,
    codes: [...document.querySelectorAll('code')].map(c => c.textContent),
    tables: [...document.querySelectorAll('table')].map(t => [t.querySelectorAll('th').length,
                                                               t.querySelectorAll('tbody tr').length]),
    images: [...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]),
    scripts: document.querySelectorAll('script').length,
    handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))
                .filter(n => n.startsWith('on')).length,
    scriptLinks: [...document.querySelectorAll('a[href]')].filter(a => !/^(https?:|mailto:|#|[^:]*$)/i.test(a.getAttribute('href'))).length,
    listItems: document.querySelectorAll('li').length,
    title: document.title,
  };
})()"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("browser")
    fakesets.write_processes(directory / "results", "m1", SECONDS, cpu_model="Apple M1 Max", device_name="Apple M1 Max")
    other = directory / "h100" / "results" / "cells"
    fakesets.write_machine(other, "h100", OTHER, cpu_model="Intel Xeon Platinum 8480+")
    fakesets.write_cell(other, fakesets.cell_rows("h100", "cuda", "resnet18", "train", 64, 1.0, "Intel Xeon Platinum 8480+",
                                                  status="oom", error=HOSTILE))
    config = write_config(directory, {**LOCAL, "include_results": [str(directory / "h100")]})
    snakemake(directory, config, "--cores", "2")
    snakemake(directory, config, "--cores", "1", "publish")
    snakemake(directory, config, "--cores", "1", "--report", "results/studies/config/report.html")
    return directory


@pytest.fixture(scope="module")
def browser():
    chromium = Browser(CHROMIUM, width=1280, height=1000)
    yield chromium
    chromium.close()


def keep(screenshot: Path) -> Path:
    """Copy a screenshot to $SPEEDATLAS_SCREENSHOTS (for a person to look at), if set."""
    folder = os.environ.get("SPEEDATLAS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(folder) / screenshot.name)
    return screenshot


def summary_lines(report_md: str) -> list[str]:
    """The summary's items as plain text (code spans unwrapped), to find in the rendered page."""
    block = report_md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    return [re.sub(r"`([^`]*)`", r"\1", line[2:]).replace("\\", "") for line in block.strip().splitlines()]


def check_rendered(page: dict, report_md: str) -> None:
    """Every element kind the report uses rendered, and nothing hostile ran."""
    text = " ".join(page["text"].split())
    lines = summary_lines(report_md)
    assert page["summaryItems"] == len(lines) >= 2
    for line in lines:
        assert " ".join(line.split()) in text, line
    # code spans became <code>, none left as backticks (a span across a line break included)
    assert "m1" in page["codes"] and "n.s." in page["codes"], page["codes"][:10]
    assert "`" not in text.replace("`x y`", "")  # the only backticks left: the error's own, escaped as text
    # tables: a header and rows each, no Markdown table syntax left over
    assert len(page["tables"]) >= 5 and all(th > 0 and rows > 0 for th, rows in page["tables"]), page["tables"]
    assert "|---" not in text and "| --- |" not in text
    assert page["listItems"] >= len(lines) + 2  # the summary and the numbered reasons
    # images: every plot the report embeds was decoded (a broken image has naturalWidth 0)
    embedded = report_md.count("![")
    assert embedded >= 3 and len(page["images"]) == embedded, page["images"]
    assert all(complete and width > 300 and height > 150 for _, complete, width, height in page["images"]), page["images"]
    # the hostile error text: shown whole as text, never run
    assert "<script>alert('script ran')</script>" in text and "onerror=" in text and "the end." in text
    assert page["scripts"] == 0 and page["handlers"] == 0 and page["scriptLinks"] == 0


def test_published_index_html_renders_in_chromium(study, browser):
    bundle = study / "results" / "publish" / "m1-browser"
    report_md = (bundle / "report.md").read_text()
    browser.open((bundle / "index.html").as_uri())
    page = browser.evaluate(INSPECT)
    assert page["title"] == "speedatlas report: h100 vs m1"
    check_rendered(page, report_md)
    assert browser.evaluate("document.querySelector('a[href=\"plots/noise.svg\"]') !== null")  # links to the bundle's files
    assert browser.dialogs() == []
    shot = keep(browser.screenshot(study / "index-html.png"))
    assert shot.stat().st_size > 50_000  # a page, not a blank window


def test_snakemake_report_shows_the_report_text(study, browser):
    """Snakemake's report shows an HTML item in a frame loaded from a data: URL: the study's report
    must be readable there (a Markdown item was only a download link that did nothing)."""
    report_md = (study / "results" / "studies" / "config" / "report.md").read_text()
    browser.open((study / "results" / "studies" / "config" / "report.html").as_uri(), settle=1.0)
    browser.wait_for("typeof app !== 'undefined' && document.querySelectorAll('a').length > 5")
    # the start page points to the report
    assert "Read the study's report first" in browser.evaluate("document.body.innerText")
    # as a reader does it: the category Report, then the eye button of its one item
    browser.evaluate("[...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'Report').click()")
    browser.wait_for("[...document.querySelectorAll('tr')].some(t => t.textContent.includes(\"the study's report\"))")
    browser.evaluate("[...document.querySelectorAll('tr')].find(t => t.textContent.includes(\"the study's report\"))"
                     ".querySelector('a[iconname=eye]').click()")
    browser.wait_for("document.querySelector('iframe') !== null")
    deadline = time.monotonic() + 30
    while True:
        try:
            frame = browser.frame_context("data:text/html")
            browser.wait_for("document.readyState === 'complete' && document.images.length > 0 && "
                             "[...document.images].every(i => i.complete)", context=frame)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    page = browser.evaluate(INSPECT, context=frame)
    check_rendered(page, report_md)
    # inside the frame, links to files beside report.md would lead nowhere: shown as text
    assert browser.evaluate("document.querySelectorAll('a[href^=\"plots/\"]').length", context=frame) == 0
    assert browser.dialogs() == []
    keep(browser.screenshot(study / "snakemake-report.png", full_page=False))


@pytest.mark.parametrize("bundle", sorted(p.name for p in (REPO / "published").iterdir() if (p / "index.html").is_file()))
def test_committed_bundles_render(bundle, browser, tmp_path):
    """The committed published/*/index.html: every image decodes, tables and code render, no
    Markdown left over, nothing runs."""
    folder = REPO / "published" / bundle
    browser.open((folder / "index.html").as_uri())
    page = browser.evaluate(INSPECT)
    report_md = (folder / "report.md").read_text()
    assert len(page["images"]) == report_md.count("![") and all(
        complete and width > 300 for _, complete, width, _ in page["images"]), page["images"]
    assert len(page["tables"]) >= 3 and all(th > 0 and rows > 0 for th, rows in page["tables"])
    assert page["codes"] and "`" not in page["text"] and "|---" not in page["text"]
    assert page["summaryItems"] == len(summary_lines(report_md))
    assert page["scripts"] == 0 and page["handlers"] == 0 and page["scriptLinks"] == 0 and browser.dialogs() == []
    keep(browser.screenshot(tmp_path / f"{bundle}.png", full_page=False))
