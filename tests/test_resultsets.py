"""Result sets of other machines: locating, verifying, merging, and comparing across machines."""

from __future__ import annotations

import json
import shutil

import fakesets
import pandas as pd
import pytest

from speedatlas.present.report import speedup_tables
from speedatlas.plan import comparisons
from speedatlas.analyze import machine_axis, resultsets, tables
from speedatlas.plan.config import ConfigError

H100 = {("cpu", "resnet18", "infer", 4): 0.040, ("cuda", "resnet18", "infer", 4): 0.002}
M1 = {("cpu", "resnet18", "infer", 4): 0.080, ("mps", "resnet18", "infer", 4): 0.010}


@pytest.fixture
def two_sets(tmp_path):
    h100 = tmp_path / "h100" / "results" / "cells"
    m1 = tmp_path / "m1" / "results" / "cells"
    fakesets.write_machine(h100, "h100", H100, cpu_model="Intel Xeon")
    fakesets.write_machine(m1, "m1max", M1, cpu_model="Apple M1 Max", device_name=None)
    return tmp_path


def read(result_set):
    return resultsets.read_result_set(result_set)


def test_locate_accepts_results_folder_cells_tree_and_machine_folder(two_sets):
    for entry in ("h100", "h100/results", "h100/results/cells", "h100/results/cells/machine=h100"):
        found = comparisons.locate(str(two_sets / entry))
        assert found.machines == ["h100"] and len(found.files) == 2
        assert found.root == str(two_sets / "h100" / "results" / "cells")
    assert comparisons.devices_by_machine([found]) == {"h100": {"cpu", "cuda"}}


def test_locate_ignores_unfinished_and_stray_files(two_sets):
    cells = two_sets / "h100" / "results" / "cells"
    cell = next(cells.rglob("cell.parquet"))
    shutil.copy(cell, cell.with_name(".cell-abc.parquet.tmp"))  # an interrupted write
    shutil.copy(cell, cells / "machine=h100" / "stray.parquet")  # not at a cell's depth
    assert len(comparisons.locate(str(cells)).files) == 2


@pytest.mark.parametrize(("entry", "message"), [("missing", "does not exist"), ("empty", "holds no result set")])
def test_locate_refuses_what_is_not_a_result_set(tmp_path, entry, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(comparisons.MergeError, match=rf"include_results\[2\].*{message}"):
        comparisons.locate(str(tmp_path / entry), 2)


def test_a_cell_moved_to_the_wrong_folder_is_refused(two_sets):
    cells = two_sets / "h100" / "results" / "cells"
    cell = next(cells.rglob("device=cpu/**/cell.parquet"))
    wrong = cells / str(cell.relative_to(cells)).replace("batch=4", "batch=8")
    wrong.parent.mkdir(parents=True)
    shutil.move(cell, wrong)
    with pytest.raises(comparisons.MergeError, match="folder says batch=8 but its rows say batch_size=4"):
        read(comparisons.locate(str(cells)))


def test_merge_of_two_machines_keeps_every_row_and_its_environment(two_sets):
    h100, m1 = (comparisons.locate(str(two_sets / m)) for m in ("h100", "m1"))
    raw = resultsets.merge([("m1", read(m1)), ("h100", read(h100))])
    cells = tables.summarize_cells(raw)
    assert sorted(cells.machine.unique()) == ["h100", "m1max"]
    assert dict(zip(cells.machine, cells.cpu_model)) == {"h100": "Intel Xeon", "m1max": "Apple M1 Max"}
    assert len(raw) == 4 * 6


def test_one_label_with_two_cpus_is_refused(two_sets, tmp_path):
    other = tmp_path / "other"
    fakesets.write_machine(other, "h100", {("cpu", "vgg16", "infer", 4): 0.1}, cpu_model="AMD EPYC")
    h100, impostor = comparisons.locate(str(two_sets / "h100")), comparisons.locate(str(other))
    with pytest.raises(comparisons.MergeError, match=r"'h100' means two different machines: cpu_model"):
        resultsets.merge([("a", read(h100)), ("b", read(impostor))])


def test_same_cell_twice_is_kept_once_if_identical_and_refused_if_not(two_sets, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(two_sets / "h100", copy)
    original, duplicate = comparisons.locate(str(two_sets / "h100")), comparisons.locate(str(copy))
    merged = resultsets.merge([("a", read(original)), ("b", read(duplicate))])
    assert len(merged) == len(read(original))

    changed = tmp_path / "changed"
    fakesets.write_machine(changed, "h100", {("cpu", "resnet18", "infer", 4): 0.05}, cpu_model="Intel Xeon")
    with pytest.raises(comparisons.MergeError, match="different measurements"):
        resultsets.merge([("a", read(original)), ("b", read(comparisons.locate(str(changed))))])


def test_older_cell_files_without_new_columns_still_merge(two_sets, tmp_path):
    import pyarrow.parquet as pq

    cells = two_sets / "h100" / "results" / "cells"
    for path in cells.rglob("cell.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop(["flops_per_step", "compile_time_s"]), path)
    raw = read(comparisons.locate(str(cells)))
    assert raw["flops_per_step"].isna().all() and len(raw) == 12


def test_bundle_checksums_are_verified(two_sets, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(two_sets / "h100" / "results" / "cells", bundle / "cells")
    files = sorted((bundle / "cells").rglob("cell.parquet"))
    listed = {p.relative_to(bundle).as_posix(): {"sha256": comparisons.sha256(p)} for p in files}
    (bundle / "manifest.json").write_text(json.dumps({"files": listed}))
    found = comparisons.locate(str(bundle))
    assert found.manifest and found.root == str(bundle / "cells")
    comparisons.verify_manifest(found)
    victim = next((bundle / "cells").rglob("cell.parquet"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with pytest.raises(comparisons.MergeError, match="does not match the sha256"):
        comparisons.verify_manifest(found)


def test_included_files_skip_this_studys_own_cells(two_sets):
    h100 = comparisons.locate(str(two_sets / "h100"))
    own = [h100.files[0]]
    assert comparisons.included_files([h100, h100], own) == list(h100.files[1:])
    assert comparisons.included_files([h100], [], str(two_sets / "h100" / "results" / "cells" / "machine=h100")) == []


# Cross-machine comparisons -------------------------------------------------------------------


def merged_raw(two_sets):
    h100, m1 = (comparisons.locate(str(two_sets / m)) for m in ("h100", "m1"))
    return resultsets.merge([("m1", read(m1)), ("h100", read(h100))])


def test_machine_device_axis_against_each_baseline(two_sets):
    raw = merged_raw(two_sets)
    table = machine_axis.compare_machines(raw, ["m1max/cpu", "m1max/mps"], resamples=200)
    assert (table.axis == "machine_device").all()
    got = {(r.candidate, r.baseline): r.speedup for r in table.itertuples()}
    # Same-machine pairs are the device axis' job; nothing compares a baseline with an earlier one.
    assert set(got) == {("h100/cpu", "m1max/cpu"), ("h100/cuda", "m1max/cpu"), ("h100/cpu", "m1max/mps"),
                        ("h100/cuda", "m1max/mps")}
    assert got[("h100/cuda", "m1max/mps")] == pytest.approx(0.010 / 0.002, rel=0.01)
    assert got[("h100/cpu", "m1max/cpu")] == pytest.approx(2.0, rel=0.01)
    row = table[table.candidate == "h100/cuda"].iloc[0]
    assert (row.machine, row.device) == ("h100", "cuda") and row.ci_low < row.speedup < row.ci_high


def test_one_machine_has_no_cross_machine_rows(two_sets):
    raw = read(comparisons.locate(str(two_sets / "h100")))
    assert machine_axis.compare_machines(raw, ["h100/cpu"]).empty


def test_baselines_must_name_a_machine_and_device_of_the_study():
    config = {"machine": "m1max", "devices": ["cpu", "mps"], "cross_machine_baselines": ["m1max/mps", "h100/cuda"]}
    comparisons.check_baselines(config, {"h100": {"cpu", "cuda"}})
    with pytest.raises(ConfigError, match=r"cross_machine_baselines\[1\].*'h100' is neither.*known machines: m1max"):
        comparisons.check_baselines(config, {})
    config["cross_machine_baselines"] = ["m1max/cuda"]
    with pytest.raises(ConfigError, match=r"cross_machine_baselines\[0\].*no device 'cuda'; its devices: cpu, mps"):
        comparisons.check_baselines(config, {})


def test_speedup_markdown_pivots_batch_sizes_and_names_machines(two_sets):

    raw = merged_raw(two_sets)
    speedups = pd.concat([
        machine_axis.compare_machines(raw, ["m1max/mps"], resamples=200),
        tables.speedup_table(raw, "cpu", "current", resamples=200),
    ])
    text = speedup_tables.speedups_markdown(speedups)
    assert "### Speed-ups across machines" in text and "| h100/cuda vs m1max/mps | resnet18 | infer | 5.00× [" in text
    device = text.split("### Device speed-ups", 1)[1]
    assert "| comparison | machine | model | mode | batch 4 |" in device
    assert "| cuda vs cpu | h100 |" in device and "| mps vs cpu | m1max |" in device
