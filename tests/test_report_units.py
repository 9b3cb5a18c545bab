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


MPS_GONE = ("mps is not available: this torch build has no MPS support (torch 2.9.0, linux); it needs an Apple "
            "Silicon Mac with macOS 14 or newer and an arm64 (not x86_64/Rosetta) Python")
SHIPPED = findings.Shipped("published/h100", "H100", frozenset({("resnet18", 4), ("vgg16", 64)}), 224)


def local_study(devices_ok=("cpu",), unavailable=("mps",), models=("resnet18", "alexnet"), batches=(2, 8),
                status=None):
    """One machine's tables as the aggregate makes them: cells that ran (with their intervals) and
    cells of devices that are not there (status unavailable, with torch's reason)."""
    rows = []
    for i, (device, model, mode, batch) in enumerate(
            (d, m, mode, b) for d in (*devices_ok, *unavailable) for m in models for mode in ("train", "infer")
            for b in batches):
        if device in unavailable:
            rows += fakesets.cell_rows("mac", device, model, mode, batch, 1, "Apple M1 Max", status="unavailable",
                                       error=MPS_GONE if device == "mps" else f"{device} is not available: no GPU")
        elif status:
            rows += fakesets.cell_rows("mac", device, model, mode, batch, 1, "Apple M1 Max", status=status,
                                       error="RuntimeError: the model does not fit\n  (second line of the reason)")
        else:
            seconds = 0.01 * batch ** 0.7 * (3 if mode == "train" else 1) * (0.2 if device == "mps" else 1)
            rows += fakesets.cell_rows("mac", device, model, mode, batch, seconds, "Apple M1 Max", seed=i, noise=0.05)
    raw = pd.DataFrame(rows)
    raw = raw.assign(**{c: None for c in tables.CELL_INFO if c not in raw})
    raw = raw.assign(**{c: float("nan") for c in ("step_time_s", "items_per_s", "repeat") if c not in raw})
    samples = tables.Samples(raw, 300, 0)
    cells = tables.add_intervals(tables.summarize_cells(raw), samples, 0.95)
    return cells, tables.speedup_table(raw, "cpu", "current", resamples=300, samples=samples)


def study_of(devices, **extra):
    return {"machine": "mac", "devices": list(devices), "input_size": 64, "include_results": [], **extra}


def check_figure(sentence: str, cell: pd.Series) -> None:
    """The sentence quotes the cell's throughput and its interval with the digits they support."""
    items = cell.items_per_s * cell.median_s
    value, low, high = formatting.figures(cell.items_per_s, items / cell.ci_high_s, items / cell.ci_low_s)
    assert f"{value} images/s [{low}–{high}]" in sentence, sentence


def test_device_not_on_this_machine_says_so_first_then_the_cpu_figure():
    """A cpu-vs-mps study on a machine without mps (issue 25): not only '8 of 16 cells did not
    run', but why there is no comparison, what to do next, and what the cpu did."""
    cells, speedups = local_study()
    lines = findings.summary(cells, speedups, study=study_of(["cpu", "mps"]), shipped=SHIPPED)
    assert lines[0].startswith("No device comparison: mps is not on this machine (8 cells unavailable), so only "
                               "cpu ran: run this study on an Apple Silicon Mac (mps), or compare this machine with "
                               "the shipped H100 result set by adding `include_results: [published/h100]` to the config")
    # this study has no cell of the H100 set (batch 2 and 8, 64x64): say which to take
    assert lines[0].endswith("and taking its cells (input_size 224, resnet18 and vgg16 at batch 4 or 64).")
    ok = cells[cells.status == "ok"].sort_values(["items_per_s", "model"])
    assert lines[1].startswith("On cpu, the 8 cells ran from ")
    check_figure(lines[1].split(" to ")[0], ok.iloc[0])
    check_figure(lines[1].split(" to ")[1], ok.iloc[-1])
    assert "(alexnet" in lines[1] or "(resnet18" in lines[1]
    assert not any("did not run" in line for line in lines)  # the 8 unavailable cells are explained already


def test_default_study_without_cuda_and_mps():
    cells, speedups = local_study(unavailable=("cuda", "mps"), models=("resnet18",), batches=(4,))
    lines = findings.summary(cells, speedups, study=study_of(["cpu", "cuda", "mps"], input_size=224), shipped=SHIPPED)
    assert lines[0].startswith("No device comparison: cuda and mps are not on this machine (4 cells unavailable), so "
                               "only cpu ran: run this study on a machine with an NVIDIA GPU (cuda) or an Apple Silicon "
                               "Mac (mps), or compare")
    # resnet18 at batch 4, 224x224 is in the H100 set: including it is enough
    assert lines[0].endswith("`include_results: [published/h100]` to the config.")
    assert lines[1].startswith("On cpu, the 2 cells ran from ")
    # the shipped set is already included: not suggested again
    again = findings.summary(cells, speedups, study=study_of(["cpu", "cuda", "mps"], include_results=["published/h100"]),
                             shipped=SHIPPED)
    assert "include_results" not in again[0] and again[0].endswith("Apple Silicon Mac (mps).")


def test_one_cell_gives_its_figure_with_its_interval():
    cells, speedups = local_study(models=("resnet18",), batches=(8,))
    cells = cells[~((cells["mode"] == "infer") & (cells.device == "cpu"))]
    lines = findings.summary(cells, speedups.iloc[0:0], study=study_of(["cpu", "mps"]))
    assert lines[1].startswith("On cpu, resnet18 training at batch 8 runs at ")
    check_figure(lines[1], cells[cells.status == "ok"].iloc[0])


def test_one_device_study_says_add_a_device_and_reports_scaling(fake_study):
    cells, speedups = fake_study
    cpu = speedups[(speedups.machine == "m1max") & (speedups.device == "cpu") & (speedups.axis == "batch_size")]
    lines = findings.summary(cells[(cells.device == "cpu") & (cells.machine == "m1max")], cpu,
                             study={"machine": "m1max", "devices": ["cpu"], "input_size": 224})
    assert lines[0] == ("No device comparison: this study has one device (cpu); add mps to `devices` and run it on an "
                        "Apple Silicon Mac (mps) to compare.")
    assert lines[1].startswith("On cpu, the 12 cells ran from ")
    significant = cpu[cpu.significant]
    if len(significant):
        best = significant.sort_values(["speedup", "model"], ascending=[False, True]).iloc[0]
        shown = formatting.figures(best.speedup, best.ci_low, best.ci_high)[0]
        assert lines[2].startswith(f"On cpu, {best.model}") and f"{shown}× more images/s" in lines[2]


def test_every_cell_failed_gives_the_first_reason_whole():
    cells, speedups = local_study(unavailable=(), status="oom")
    lines = findings.summary(cells, speedups, study=study_of(["cpu"]))
    assert lines[0] == ("No cell ran, so there is nothing to compare; the first reason, for 8 cpu cells (oom): "
                        "RuntimeError: the model does not fit (second line of the reason).")


def test_a_comparison_comes_first_and_a_missing_device_is_named():
    cells, speedups = local_study(devices_ok=("cpu", "mps"), unavailable=("cuda",))
    lines = findings.summary(cells, speedups, study=study_of(["cpu", "mps", "cuda"]), shipped=SHIPPED)
    row = check_sentence(lines[0], speedups)
    assert (row.candidate, row.baseline) == ("mps", "cpu")
    assert "cuda is not on this machine (8 cells unavailable): run the study on a machine with an NVIDIA GPU (cuda) " \
           "for its figures." in lines
    assert not any("include_results" in line or "did not run" in line for line in lines)


def test_failed_cells_show_each_distinct_reason_whole():
    """Reasons were cut at 160 characters mid-word ('an arm64 (not x…'); now whole, once each."""
    from speedatlas.present.report import failures

    cells, _ = local_study(unavailable=("cuda", "mps"))
    text = failures.section(cells)
    assert "| cuda | unavailable | 8 | alexnet, resnet18 | infer, train | 2, 8 | float32 | current | 1 |" in text
    assert "| mps | unavailable | 8 | alexnet, resnet18 | infer, train | 2, 8 | float32 | current | 2 |" in text
    assert "1. cuda is not available: no GPU\n" in text
    assert f"2. {MPS_GONE}\n" in text and "…" not in text
    hostile = cells.assign(error=cells["error"].where(cells.status == "ok", "<img src=x onerror=alert(1)> [a](javascript:x)"))
    assert "\\<img src=x onerror=alert(1)\\> \\[a\\](javascript:x)" in failures.section(hostile)


def test_nothing_empty_is_embedded():
    """No energy plot or section without an energy figure, no heatmap without a comparison, no mps
    section without an mps cell that ran, no throughput plot of one point."""
    from speedatlas.present.report import mac_checks, sections

    cells, speedups = local_study()
    paths = {k: f"plots/{k}.png" for k in ("speedup_heatmap", "throughput", "noise", "energy")}
    assert list(sections.shown_plots(paths, cells, speedups, energy=False)) == ["throughput", "noise"]
    assert list(sections.shown_plots(paths, cells.iloc[:1], speedups, energy=True)) == ["noise", "energy"]
    assert not mac_checks.applies(cells)  # mps cells, all unavailable, on Linux
    both, both_speedups = local_study(devices_ok=("cpu", "mps"), unavailable=())
    assert "speedup_heatmap" in sections.shown_plots(paths, both, both_speedups, energy=False)
    assert mac_checks.applies(both)
    study = {"machine": "mac", "devices": ["cpu", "mps"], "baseline_device": "cpu", "torch_versions": ["current"],
             "models": ["resnet18", "alexnet"], "batch_sizes": [2, 8], "dtypes": ["float32"], "modes": ["train", "infer"],
             "variants": ["eager"], "input_size": 32, "num_classes": 4, "seed": 0,
             "timing": {"warmup": 1, "repeats": 6, "steps_per_repeat": 1}}
    text = assemble.render(cells, speedups, study, paths)
    for absent in ("## Machine state and mps checks", "plots/energy.png", "plots/speedup_heatmap.png", "## Energy",
                   "No cell had an energy counter"):
        assert absent not in text, absent


def test_what_was_run_names_what_the_cells_ran():
    """Models that all override batch_sizes (and add variants) ran none of the study's top-level
    lists: the matrix paragraph names the batch sizes and variants of this machine's cells."""
    from speedatlas.present.report import sections

    cells, _ = local_study(batches=(8, 32), unavailable=())
    cells.loc[cells["model"] == "alexnet", "variant"] = "mlx"
    study = {"machine": "mac", "devices": ["cpu"], "baseline_device": "cpu", "torch_versions": ["current"],
             "models": [{"name": "resnet18", "batch_sizes": [8]}, {"name": "alexnet", "batch_sizes": [32],
                                                                   "variants": ["eager", "mlx"]}],
             "batch_sizes": [4, 64], "dtypes": ["float32"], "modes": ["train", "infer"], "variants": ["eager"],
             "input_size": 32}
    text = sections.what_was_run(cells, study)
    assert "batch sizes 8, 32;" in text and "variants eager, mlx;" in text, text
    assert "batch sizes 4, 64" not in text


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


def test_committed_bundles_pass_their_checksums():
    """published/*/ (their index.html rebuilt with the renderer): `sha256sum -c SHA256SUMS` holds in
    each, and manifest.json lists the same files and digests."""
    from conftest import REPO

    for folder in sorted((REPO / "published").iterdir()):
        if not (folder / "SHA256SUMS").is_file():
            continue
        check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
        assert check.returncode == 0, (folder.name, check.stdout + check.stderr)
        listed = dict(line.split("  ", 1)[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
        manifest = json.loads((folder / "manifest.json").read_text())["files"]
        assert listed == {name: entry["sha256"] for name, entry in manifest.items()}, folder.name


def test_point_labels_never_overlap_and_name_what_tells_cells_apart():
    """Two noisy cells of one row printed 'bs 64bs 4' over each other (issue 25): labels.place
    keeps every label clear of the others and of every marker, inside the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from speedatlas.present.plots import labels

    fig, ax = plt.subplots(figsize=(4, 3))
    xs, ys = [10, 10.5, 11, 11.2, 30, 30, 30, 60], [1, 1, 1, 1.02, 2, 2, 2, 1]
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    ax.margins(0.2)
    placed = labels.place(ax, xs, ys, [f"bs {i} · bfloat16" for i in range(len(xs))])
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(a, renderer) for a in placed]
    inside = ax.get_window_extent(renderer)
    assert not [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes)
    plt.close(fig)
    cells = pd.DataFrame({"machine": ["m"] * 3, "device": ["cpu", "cpu", "mps"], "model": ["a"] * 3,
                          "dtype": ["float32", "bfloat16", "float32"], "mode": ["train"] * 3, "batch_size": [4, 4, 64]})
    keys = labels.label_keys(cells, shown={"device", "model", "mode"})
    assert keys == ["dtype", "batch_size"]
    assert labels.cell_label(cells.iloc[1], keys) == "bfloat16 · bs 4"


def test_noise_plot_labels_noisy_cells_by_row_and_batch(fake_study, tmp_path):
    cells, _ = fake_study
    noisy = cells.assign(cv=cells["cv"].where(cells["model"] != "alexnet", 0.3),
                         dtype=cells["dtype"].where(cells["batch_size"] != 64, "bfloat16"))
    noise.noise_plot(noisy, 0.1, str(tmp_path / "n.png"), str(tmp_path / "n.svg"))
    svg = (tmp_path / "n.svg").read_text()
    assert "alexnet · bfloat16" in svg and "alexnet · float32" in svg  # a row per model and dtype
    assert svg.count("<!-- bs 4 -->") + svg.count("<!-- bs 128 -->") >= 4  # each noisy cell: its batch size
    assert "bs 64bs 4" not in svg and png_size(tmp_path / "n.png")[0] < 1600


def test_snakemake_report_page_shows_file_links_as_text(tmp_path):
    """The page Snakemake's report shows travels alone (a data: URL): links to files beside
    report.md lead nowhere there, so they stay text; web links, anchors and images stay."""
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    md = "# r\n\n![plot](plots/p.png)\n\n[SVG](plots/p.svg) [**tables**](tables/x.csv) [web](https://example.org) [top](#r)\n"
    page = html_page.to_html(md, base=tmp_path, files=False)
    assert "<p>SVG <strong>tables</strong> <a href=\"https://example.org\">web</a> <a href=\"#r\">top</a></p>" in page
    assert 'src="data:image/png;base64,' in page
    assert '<a href="plots/p.svg">SVG</a>' in html_page.to_html(md, base=tmp_path)  # index.html keeps them


def test_cells_short_of_their_precision_are_said_in_the_summary_and_how_far():
    """A host-bound cell whose processes disagree by ±44% cannot reach ±5% with any practical
    number of processes: the summary names it, and the note says what the pilot asked for rather
    than advising a larger budget (measured so on a lent H100, 2026-12-06)."""
    from speedatlas.present.report import intervals

    base = {"machine": "h100", "device": "cuda", "mode": "infer", "status": "ok", "precision_target": 0.05,
            "pilot_processes": 4, "noisy": False}
    cells = pd.DataFrame([
        {**base, "model": "resnet18", "batch_size": 4, "processes": 10, "precision": 0.44, "precision_met": False,
         "precision_limited_by": "max_processes", "wanted_processes": 562},
        {**base, "model": "mobilenet_v2", "batch_size": 4, "processes": 10, "precision": 0.12, "precision_met": False,
         "precision_limited_by": "max_processes", "wanted_processes": 60},
        {**base, "model": "resnet50", "batch_size": 64, "processes": 4, "precision": 0.01, "precision_met": True,
         "precision_limited_by": None, "wanted_processes": 4},
    ])
    lines = findings.status_lines(cells)
    assert lines == ["2 of 3 cells fell short of their precision target (the widest: resnet18 cuda infer batch 4, "
                     "±44% for ±5% asked): figures involving them are rough; see 'Speed-ups'."]
    note = intervals.precision_note(cells)
    assert "2 of them fell short of the target (2 by max_processes)" in note
    assert "would need 60 to 562 processes (median 311)" in note and "Raise timing.max_processes" not in note
    # a cell just short of its target: a larger budget is the advice
    near = cells.assign(wanted_processes=[14, 12, 4])
    assert "Raise timing.max_processes" in intervals.precision_note(near)
    assert findings.status_lines(cells.assign(precision_met=True)) == []


def test_efficiency_rows_name_the_variant_when_a_study_has_several():
    """published/h100-variants' table had three rows per model that read the same (eager,
    channels_last, compile): every key that varies gets a column."""
    from speedatlas.present.report.efficiency import efficiency_markdown

    rows = [{"machine": "h100", "torch_requested": "current", "model": "resnet50", "device": "cuda", "dtype": "bfloat16",
             "mode": "infer", "batch_size": 128, "status": "ok", "variant": variant, "flops_per_step": 1.0463e12,
             "achieved_tflops": tflops, "pct_of_peak": None, "peak_memory_bytes": 2**30, "peak_source": None}
            for variant, tflops in (("eager", 68.07), ("channels_last", 97.9), ("compile", 142.21))]
    table = efficiency_markdown(pd.DataFrame(rows))
    assert "| model | variant | device | dtype | mode | batch |" in table
    assert "| resnet50 | compile | cuda | bfloat16 | infer | 128 | 1046.3 | 142.21 |" in table
    assert "| machine" not in table and "| torch" not in table  # one value each: no column


def test_a_mostly_slower_candidate_is_not_led_with_its_best_cell():
    """published/h100-mlx: MLX is slower than torch eager in 12 of 16 pairs; the summary read
    'mlx is 1.9× faster than eager for bert_base inference' (its one faster cell). It now leads
    with the majority, then names the cells where the candidate is clearly faster."""
    from conftest import REPO

    tables_dir = REPO / "published" / "h100-mlx" / "tables"
    speedups = pd.read_parquet(tables_dir / "speedups.parquet")
    cells = pd.read_parquet(tables_dir / "cells.parquet")
    first = findings.summary(cells, speedups, study={"machine": "h100", "devices": ["cuda"]})[0]
    assert first.startswith("On cuda, eager is faster than mlx in 12 of 16 cells (median speed-up of mlx 0.52×"), first
    assert "mlx is faster in 1, for bert_base inference at batch 32 (dtype float32): 1.9× (95% CI 1.4–2.6)" in first
    assert first.endswith("; 3 cannot tell them apart.")
    unclear = speedups.assign(significant=speedups["significant"] & (speedups["speedup"] < 1))
    first = findings.summary(cells, unclear, study={"machine": "h100", "devices": ["cuda"]})[0]
    assert "in no cell is mlx clearly faster (at best bert_base inference" in first and "4 cannot tell" in first
    none = speedups.assign(significant=False)
    first = findings.summary(cells, none, study={"machine": "h100", "devices": ["cuda"]})[0]
    assert first.startswith("On cuda, mlx is slower than eager in most cells, in none clearly (median"), first
    assert first.endswith("; 16 cannot tell them apart.")
    faster = speedups[speedups["axis"] == "dtype"]  # bfloat16 faster nearly everywhere: the usual sentence
    assert findings.headline(faster, set(), False, 0.95).startswith("On cuda, bfloat16 is 5× faster than float32")


def test_rows_that_differ_only_in_variant_say_so():
    """published/h100-mlx's 'All cells' and energy tables printed an eager and an MLX cell as two
    rows that read the same: every cell table gets a variant column where variants vary."""
    from conftest import REPO
    from speedatlas.present.report import energy, sections

    tables_dir = REPO / "published" / "h100-mlx" / "tables"
    cells = pd.read_parquet(tables_dir / "cells.parquet")
    speedups = pd.read_parquet(tables_dir / "speedups.parquet")
    text = sections.all_cells(cells) + "\n" + energy.energy_section(cells, speedups)
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("| ")]
    assert len(tables) == 3  # all cells, items per joule, energy ratio beside each speed-up
    for header, _, *body in tables:
        assert "| variant |" in header and len(body) >= 16
        assert len(set(body)) == len(body), "two rows read the same"
    one_variant = cells[cells["variant"] == "eager"]
    assert "| variant |" not in sections.all_cells(one_variant)


def test_cells_of_an_older_protocol_are_named():
    """published/h100-variants' cells were measured with protocol 1; a study that includes them
    beside its own protocol-2 cells said 'with the same protocol'. Now the machines table names
    each machine's protocol and the report warns that Methodology describes only the newer one."""
    from conftest import REPO
    from speedatlas.plan import comparisons
    from speedatlas.present.report import sections

    old = resultsets.read_result_set(comparisons.locate(str(REPO / "published" / "h100-variants")))
    own = resultsets.read_result_set(comparisons.locate(str(REPO / "published" / "h100-mlx"))).assign(machine="lab")
    cells = tables.summarize_cells(pd.concat([old, own], ignore_index=True))
    study = {"machine": "lab", "devices": ["cuda"], "baseline_device": "cuda", "batch_sizes": [64],
             "dtypes": ["float32", "bfloat16"], "modes": ["train", "infer"], "variants": ["eager", "mlx"],
             "torch_versions": ["current"], "models": ["resnet18"], "input_size": 224,
             "include_results": ["published/h100-variants"]}
    text = sections.what_was_run(cells, study)
    assert "| h100 | 12 | 12 | cuda | resnet50 | 1 |" in text and "| lab | 32 | 32 |" in text and "| 2 |" in text
    assert "same protocol" not in text
    assert "Methodology below describes protocol 2; 12 cells of `h100` with protocol 1 (a fixed number" in text
    alike = cells[cells["machine"] == "lab"]
    assert "Not all cells" not in sections.what_was_run(alike, {**study, "include_results": ["elsewhere"]})
