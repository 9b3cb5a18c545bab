"""The report's pieces from fake tables: summary sentences, plots, HTML and the publish bundle."""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess

import fakesets
import pandas as pd
import pytest

from speedatlas.plan import comparisons
from speedatlas import cellkey
from speedatlas.analyze import machine_axis, resultsets, tables
from speedatlas.present import formatting, publish
from speedatlas.present.plots import heatmap, noise, throughput
from speedatlas.present.report import assemble, findings, html_page

MODELS = {"vgg16": 0.7, "resnet18": 0.16, "alexnet": 0.12}


def study_tables(tmp_path):
    """A seed-like study: m1max cpu/mps (mps loses on alexnet inference at batch 4) and h100."""
    m1, h100 = {}, {}
    for model, seconds in MODELS.items():
        for mode, factor in (("train", 1.0), ("infer", 0.3)):
            for batch in (4, 64):
                cpu = seconds * factor * batch / 4
                m1[("cpu", model, mode, batch)] = cpu
                slow = model == "alexnet" and mode == "infer" and batch == 4
                m1[("mps", model, mode, batch)] = cpu * 1.5 if slow else cpu / (3 + batch / 16)
                h100[("cpu", model, mode, batch)] = cpu * 0.6
                h100[("cuda", model, mode, batch)] = cpu / (20 + batch)
    fakesets.write_machine(tmp_path / "m1", "m1max", m1, cpu_model="Apple M1 Max", noise=0.03)
    fakesets.write_machine(tmp_path / "h100", "h100", h100, cpu_model="Intel Xeon", noise=0.03)
    fakesets.write_cell(tmp_path / "m1", fakesets.cell_rows("m1max", "mps", "vgg16", "train", 128, 1, "Apple M1 Max",
                                                            status="oom"))
    raw = resultsets.merge([(m, resultsets.read_result_set(comparisons.locate(str(tmp_path / m)))) for m in ("m1", "h100")])
    cells = tables.summarize_cells(raw, 0.1)
    speedups = pd.concat([
        machine_axis.compare_machines(raw, ["m1max/cpu", "m1max/mps"], resamples=300),
        tables.speedup_table(raw, "cpu", "current", resamples=300),
    ], ignore_index=True)
    return cells, speedups


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fake")


@pytest.fixture(scope="module")
def fake_study(fake_dir):
    return study_tables(fake_dir)


SENTENCE = re.compile(
    r"(?:On (?P<machine>[^,\s]+), )?(?P<candidate>\S+) is (?P<value>[\d.]+)× (?P<verb>faster|slower) than "
    r"(?P<baseline>\S+) for (?P<model>\w+) (?P<mode>training|inference) at batch (?P<batch>\d+) "
    r"\(95% CI (?P<low>[\d.]+)–(?P<high>[\d.]+)\)"
)


def check_sentence(sentence: str, speedups: pd.DataFrame) -> pd.Series:
    """Find the table row a headline sentence talks about and compare every number."""
    match = SENTENCE.search(sentence)
    assert match, sentence
    g = match.groupdict()
    mode = "train" if g["mode"] == "training" else "infer"
    rows = speedups[(speedups.candidate == g["candidate"]) & (speedups.baseline == g["baseline"])
                    & (speedups.model == g["model"]) & (speedups["mode"] == mode)
                    & (speedups.batch_size == int(g["batch"]))]
    if g["machine"]:
        rows = rows[rows.machine == g["machine"]]
    assert len(rows) == 1, sentence
    row = rows.iloc[0]
    value, low, high = (row.speedup, row.ci_low, row.ci_high) if g["verb"] == "faster" else (
        1 / row.speedup, 1 / row.ci_high, 1 / row.ci_low)
    # every figure with the digits its interval supports (issue 23): the one rule, formatting.figures
    assert (g["value"], g["low"], g["high"]) == formatting.figures(value, low, high), sentence
    return row


def test_summary_sentences_match_the_table(fake_study):
    cells, speedups = fake_study
    lines = findings.summary(cells, speedups)
    # Accelerator against accelerator first: what a reader of "m1max vs h100" asks.
    first = check_sentence(lines[0], speedups)
    assert (first.candidate, first.baseline) == ("h100/cuda", "m1max/mps")
    group = speedups[(speedups.candidate == "h100/cuda") & (speedups.baseline == "m1max/mps")]
    assert first.speedup == group.speedup.max()
    assert f"median speed-up is {group.speedup.median():.2f}×" in lines[0]
    assert f"over all {len(group)} cells" in lines[0]
    exception = next(line for line in lines if line.startswith("Exception"))
    slowest = speedups[(speedups.axis == "device") & (speedups.machine == "m1max")].sort_values("speedup").iloc[0]
    assert exception.startswith("Exception (m1max: mps vs cpu): mps is slower than cpu in 1 of 12 cells, most "
                                f"for alexnet inference at batch 4: "
                                f"{formatting.figures(1 / slowest.speedup, 1 / slowest.ci_high, 1 / slowest.ci_low)[0]}× slower")
    assert any("more comparisons in 'Speed-ups'" in line for line in lines)
    assert any(line.startswith("1 of 49 cells did not run (1 oom)") for line in lines)


def test_single_machine_summary_has_headline_exception_and_trend(fake_study):
    cells, speedups = fake_study
    m1 = speedups[(speedups.machine == "m1max") & (speedups.axis != "machine_device")]
    lines = findings.summary(cells[cells.machine == "m1max"], m1)
    row = check_sentence(lines[0], m1)
    assert (row.candidate, row.baseline) == ("mps", "cpu")
    slowest = m1[m1.axis == "device"].sort_values("speedup").iloc[0]
    assert lines[1] == (
        "Exception (mps vs cpu): mps is slower than cpu in 1 of 12 cells, most for alexnet inference at batch 4: "
        f"{1 / slowest.speedup:.2f}× slower (95% CI {1 / slowest.ci_high:.2f}–{1 / slowest.ci_low:.2f})."
    )
    device = m1[m1.axis == "device"]
    medians = device.groupby("batch_size").speedup.median()
    assert lines[2] == (f"The mps vs cpu speed-up grows with the batch size (median over cells: "
                        f"{medians[4]:.2f}× at batch 4, {medians[64]:.2f}× at batch 64).")


def test_cpu_only_study_reports_batch_scaling(fake_study):
    cells, speedups = fake_study
    cpu = speedups[(speedups.machine == "m1max") & (speedups.device == "cpu") & (speedups.axis == "batch_size")]
    line = findings.summary(cells[cells.device == "cpu"], cpu)[0]
    best = cpu.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
    shown = formatting.figures(best.speedup, best.ci_low, best.ci_high)[0]
    assert line.startswith(f"On cpu, {best.model}") and f"{shown}× more images/s" in line


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plots_are_real_images(fake_study, tmp_path):
    cells, speedups = fake_study
    heatmap.speedup_heatmap(speedups, str(tmp_path / "heat.png"), str(tmp_path / "heat.svg"))
    noise.noise_plot(cells, 0.1, str(tmp_path / "noise.png"), str(tmp_path / "noise.svg"))
    throughput.throughput_vs_batch(cells, str(tmp_path / "tp.png"), str(tmp_path / "tp.svg"))
    for name in ("heat", "noise", "tp"):
        width, height = png_size(tmp_path / f"{name}.png")
        assert 600 < width < 4000 and 300 < height < 6000, (name, width, height)
        assert (tmp_path / f"{name}.png").stat().st_size > 20_000
        assert (tmp_path / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    # 6 comparisons (2 device, 4 across machines) x 2 modes: a tall figure, one row per comparison.
    assert png_size(tmp_path / "heat.png")[1] > png_size(tmp_path / "tp.png")[1] * 2
    # Same tables, same files (no timestamps): a bundle's checksums only change with the data.
    first = (tmp_path / "heat.svg").read_bytes()
    heatmap.speedup_heatmap(speedups, str(tmp_path / "heat2.png"), str(tmp_path / "heat.svg"))
    assert (tmp_path / "heat.svg").read_bytes() == first
    assert (tmp_path / "heat2.png").read_bytes() == (tmp_path / "heat.png").read_bytes()


def test_empty_tables_give_a_placeholder(tmp_path):
    empty = pd.DataFrame(columns=[*cellkey.KEY_COLUMNS, "axis", "speedup"])
    heatmap.speedup_heatmap(empty, str(tmp_path / "heat.png"))
    assert png_size(tmp_path / "heat.png")[0] > 300


def test_report_renders_every_section(fake_study):
    cells, speedups = fake_study
    study = {"machine": "m1max", "devices": ["cpu", "mps"], "baseline_device": "cpu", "torch_versions": ["current"],
             "models": list(MODELS), "batch_sizes": [4, 64], "dtypes": ["float32"], "modes": ["train", "infer"],
             "variants": ["eager"], "input_size": 224, "num_classes": 10, "seed": 0,
             "timing": {"warmup": 5, "repeats": 6, "steps_per_repeat": 1}, "include_results": ["../h100"],
             "cross_machine_baselines": ["m1max/cpu", "m1max/mps"], "publish_name": "m1max-vs-h100",
             "configfiles": ["config/m1max.yaml"], "cells": 25}
    text = assemble.render(cells, speedups, study, {"speedup_heatmap": "plots/speedup_heatmap.png",
                                                  "throughput": "plots/throughput.png", "noise": "plots/noise.png"})
    order = ["## Summary", "## What was run", "## Methodology", "**Across machines.**", "## Environment",
             "### h100", "### m1max", "## Speed-ups", "### Speed-ups across machines", "### Device speed-ups",
             "## Plots", "## Cells that did not run", "## How to reproduce", "## All cells"]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    assert "| Intel Xeon |" not in text.split("### h100", 1)[0]
    assert "![Speed-ups by model and batch size](plots/speedup_heatmap.png)" in text
    assert "| m1max | mps | oom | 1 | vgg16 | train | 128 |" in text
    assert "publish --configfile config/m1max.yaml" in text and "results/publish/m1max-vs-h100/" in text
    # The config printed in the report is a config: it validates.
    import yaml

    from speedatlas.plan import config as study_config
    resolved = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    study_config.check_schema(resolved, study_config.load_schema())


def test_markdown_to_html_covers_what_the_report_uses(tmp_path):
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    md = ("# Title\n\n- **a** and *b* with `x|y` and mobilenet_v3_small\n\n| k | v |\n|---|---|\n| a\\|b | 2 |\n\n"
          "![plot](p.png)\n\n```yaml\nkey: <v>\n```\n\ntext [link](x.svg) <script>\n")
    page = html_page.to_html(md, base=tmp_path)
    assert "<title>Title</title>" in page and '<h1 id="title">Title</h1>' in page
    assert "<li><strong>a</strong> and <em>b</em> with <code>x|y</code> and mobilenet_v3_small</li>" in page
    assert "<td>a|b</td>\n<td>2</td>" in page and "<th>k</th>" in page
    assert 'src="data:image/png;base64,' in page
    assert "<pre><code class=\"language-yaml\">key: &lt;v&gt;\n</code></pre>" in page
    assert '<a href="x.svg">link</a> &lt;script&gt;' in page


def test_markdown_to_html_keeps_wrapped_list_items_and_code_spans(tmp_path):
    """The hand-written converter let a wrapped item fall out of its list and printed a literal
    backtick for a code span across a line break (issue 25, item 4)."""
    md = "- first item that\n  wraps onto a second line with `a code\nspan`\n- second\n"
    page = html_page.to_html(md, base=tmp_path)
    assert "<li>first item that\nwraps onto a second line with <code>a code span</code></li>" in page
    assert "`" not in page.split("<body>")[1]


def test_hostile_markup_from_a_bundle_stays_text(tmp_path):
    """An error text of another machine's bundle must not become a live link or embed a private
    file of the includer's machine (issue 27, item 2)."""
    import pandas as pd

    from speedatlas.present.formatting import markdown_table

    secret = tmp_path / "private.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "own.png").write_bytes(b"\x89PNG\r\n\x1a\nown")
    error = f"[the log](javascript:alert(1)) ![s]({secret}) ![t](../private.png) <img src=x onerror=alert(1)>"
    table = markdown_table(pd.DataFrame({"reason": [error]}))
    prose = f"- [click](javascript:alert(1)) ![s]({secret}) ![t](../private.png) <b>x</b> [ok](https://example.org) ![own](own.png)\n"
    page = html_page.to_html("# r\n\n" + table + "\n" + prose, base=bundle)
    assert "href=" not in page.replace('<a href="https://example.org">', "") and "<img src=x" not in page and "<b>" not in page
    assert base64.b64encode(b"\x89PNG\r\n\x1a\nsecret").decode() not in page
    assert page.count("<img ") == 1 and page.count(' src="') == 1 and '<a href="https://example.org">ok</a>' in page
    assert "the log" in page  # shown as text, not dropped


def test_publish_bundle_is_complete_and_verifiable(fake_study, fake_dir, tmp_path):
    cells, speedups = fake_study
    source = tmp_path / "results"
    (source / "tables").mkdir(parents=True)
    cells.to_parquet(source / "tables" / "cells.parquet")
    speedups.to_parquet(source / "tables" / "speedups.parquet")
    (source / "report.md").write_text("# r\n\n![p](plots/noise.png)\n")
    (source / "plots").mkdir()
    noise.noise_plot(cells, 0.1, str(source / "plots" / "noise.png"), str(source / "plots" / "noise.svg"))
    config = tmp_path / "study.yaml"
    config.write_text("machine: m1max\nmodels: [vgg16]\n")
    cell_files = sorted(str(p) for p in fake_dir.glob("*/machine=*/**/cell.parquet"))
    assert len(cell_files) == 49
    bundle = publish.publish(str(tmp_path / "out" / "b"), "b", str(source / "report.md"),
                             [str(source / "plots" / "noise.png"), str(source / "plots" / "noise.svg")],
                             [str(source / "tables" / "cells.parquet"), str(source / "tables" / "speedups.parquet")],
                             cell_files, [str(config)], {"machine": "m1max", "models": ["vgg16"], "cells": 1})
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "speedatlas-bundle" and set(manifest["machines"]) == {"h100", "m1max"}
    assert {"index.html", "report.md", "plots/noise.png", "tables/cells.csv", "config/study.yaml",
            "config/resolved.yaml"} <= set(manifest["files"])
    assert sum(f.startswith("cells/") for f in manifest["files"]) == len(cell_files)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "data:image/png;base64," in (bundle / "index.html").read_text()
    # ...and the bundle is a result set.
    found = comparisons.locate(str(bundle))
    comparisons.verify_manifest(found)
    assert found.machines == ["h100", "m1max"] and len(found.files) == len(cell_files)


def test_summary_does_not_claim_failure_when_no_headline_applies():
    """A one-device study of variants has every cell ok but no device or batch-size headline:
    the summary must say so, not 'No cell ran successfully' (it did, in published/h100-variants)."""
    ok = pd.DataFrame({"status": ["ok", "ok", "unsupported"]})
    assert assemble.no_findings(ok).startswith("2 cells ran ok.")
    assert assemble.no_findings(pd.DataFrame({"status": ["oom"]})) == "No cell ran successfully."
    assert assemble.no_findings(pd.DataFrame(columns=["status"])) == "No cell ran successfully."
