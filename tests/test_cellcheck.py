"""Cell files that read but lie (issue 27, item 7), unit level: each check of
speedatlas.analyze.cellcheck on real files written with the cell schema, and the spec hash the
runner records against the one the plan computes (test_faults.py runs the same faults through
snakemake)."""

from __future__ import annotations

import json

import fakesets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speedatlas import cellkey
from speedatlas.analyze import aggregate, cellcheck, tables
from speedatlas.plan import matrix, quarantine, torch_envs


def write(root, batch, **changes):
    rows = fakesets.cell_rows("m", "cpu", "resnet18", "infer", batch, 0.01, "cpu")
    rows = [{**row, "spec_sha256": "a" * 64, **changes} for row in rows]
    return str(fakesets.write_cell(root, rows))


def found(paths, spec=None):
    raw, bad = tables.read_cell_files(paths, aggregate.READ_COLUMNS)
    assert not bad
    return dict(cellcheck.problems(raw, paths, spec))


def test_good_files_pass_and_old_files_skip_only_the_spec_check(tmp_path):
    good = write(tmp_path, 1)
    old = write(tmp_path, 2)
    table = pq.read_table(old)
    pq.write_table(table.drop_columns(["spec_sha256"]), old)  # written before the column existed
    assert found([good, old], {good: "a" * 64, old: "b" * 64}) == {}


def test_each_lie_is_named_with_its_file(tmp_path):
    copied = write(tmp_path, 1)
    other = write(tmp_path, 2)
    pq.write_table(pq.read_table(other), copied)  # batch 2's file at batch 1's path
    status = write(tmp_path, 4, status="bogus")
    doubled = write(tmp_path, 8)
    table = pq.read_table(doubled)
    pq.write_table(pa.concat_tables([table, table]), doubled)
    negative = write(tmp_path, 16, step_time_s=-0.01)
    spec = write(tmp_path, 32)
    paths = [copied, other, status, doubled, negative, spec]
    problems = found(paths, {path: "a" * 64 for path in paths} | {spec: "c" * 64})
    assert sorted(problems) == sorted([copied, status, doubled, negative, spec])
    assert "its folder says batch=1 but its rows say batch_size=2" in problems[copied]
    assert "unknown status 'bogus'" in problems[status]
    assert "repeat 0 of process 0 appears more than once" in problems[doubled]
    assert "step_time_s = -0.01" in problems[negative]
    assert "measured for another spec (spec_sha256 aaaaaaaaaaaa…, this cell's spec now cccccccccccc…)" in problems[spec]


def test_two_statuses_in_one_file(tmp_path):
    path = write(tmp_path, 1)
    rows = pq.read_table(path).to_pylist()
    rows[-1]["status"] = "error"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_table(path).schema), path)
    assert "rows with statuses error and ok" in found([path])[path]


def test_missing_columns_and_empty_files_are_named_not_raised(tmp_path):
    good = write(tmp_path, 1)
    missing = write(tmp_path, 2)
    pq.write_table(pq.read_table(missing).drop_columns(["status"]), missing)
    empty = write(tmp_path, 4)
    pq.write_table(pq.read_table(empty).slice(0, 0), empty)
    raw, bad = tables.read_cell_files([good, missing, empty], aggregate.READ_COLUMNS)
    assert sorted(raw[tables.FILE_COLUMN].unique()) == [0]
    assert [(e.path, type(e)) for e in bad] == [(missing, tables.SchemaMismatch), (empty, tables.SchemaMismatch)]
    assert "missing columns ['status']" in bad[0].reason and "no rows" in bad[1].reason
    with pytest.raises(quarantine.BadCells) as error:
        aggregate.read_checked([good, missing, empty])
    assert [path for path, _ in error.value.found] == [missing, empty]


def test_the_cell_file_records_the_hash_of_the_spec_the_plan_gave(tmp_path):
    """cell_merge hashes the cell_file job's JSON text (what the plan hands it); hashing the parsed
    spec (what a process got, with the supervisor's additions) must agree for every kind of cell,
    and the cell's file carries the hash on every row."""
    (tmp_path / "net.py").write_text("def build(num_classes):\n    pass\n")
    config = {
        "machine": "m", "workload": ["synthetic", "mnist_epoch"], "models": [
            "resnet18", {"name": "net", "factory": "net.py:build", "input": {"kind": "image", "size": 8}}],
        "devices": ["cpu", "cuda"], "batch_sizes": [2], "dtypes": ["float32"], "modes": ["train"],
        "variants": ["eager"], "torch_versions": ["current"], "input_size": 8, "num_classes": 4, "seed": 0, "confidence": 0.95,
        "cpu_threads": 1, "timing": {"warmup": 1, "repeats": 2, "steps_per_repeat": 1, "processes": 1},
        "energy": {"enabled": True, "idle_s": 0.5},
        "data": {"mnist_root": "d", "download": False, "images": 64, "num_workers": 0, "epochs": 1},
    }
    cells = matrix.expand(config, cwd=tmp_path)
    assert {c.workload for c in cells} == {"synthetic", "mnist_epoch"} and any(c.model_source for c in cells)
    specs = [c.spec() for c in cells] + [torch_envs.spec_with_env(cells[0].spec(), "2.5", "torch==2.5.*")]
    for text in specs:
        spec = json.loads(text)
        handed_on = {**spec, "process": 2, "_launched_at": 12.5, "_prefer_gpu": 1}  # what the supervisor adds
        assert cellkey.spec_sha256(handed_on) == cellkey.spec_sha256(text)
    assert len({cellkey.spec_sha256(text) for text in specs}) == len(specs)
    from speedatlas.measure import cell_merge, cellio
    from speedatlas.measure.process import receipts

    part = tmp_path / "process-0.parquet"
    row = {**cellkey.row_columns(json.loads(specs[0]), 1), "status": "ok", "repeat": 0, "step_time_s": 0.5}
    cellio.write_atomic(cellio.rows_to_table([row]), part)
    receipts.write(cellkey.receipt_path(str(part)), **receipts.of_rows([row], 1.0))
    cell_merge.merge(specs[0], [str(part)], str(tmp_path / "cell.parquet"))
    assert set(pq.read_table(tmp_path / "cell.parquet").column("spec_sha256").to_pylist()) == {cellkey.spec_sha256(specs[0])}
