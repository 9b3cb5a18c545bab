"""A study's size, counted before any cell is built (issue 27, item 12): the count is exactly
what the matrix makes, the floor under its time follows the launcher, max_cells refuses above it.
(test_faults_third_round.py runs the 72,000-cell matrix through snakemake.)"""

from __future__ import annotations

import pytest

from speedatlas.plan import matrix, study_size
from speedatlas.plan.config import ConfigError, prepare

CONFIG = {
    "machine": "m", "devices": ["cpu", "cuda", "mps"], "batch_sizes": [1, 2, 4], "dtypes": ["float32", "bfloat16"],
    "modes": ["train", "infer"], "variants": ["eager", "compile"], "torch_versions": ["current", "2.5"],
    "workload": ["synthetic", "mnist_epoch"], "timing_by_device": {"cpu": {"processes": 2}},
    "models": ["resnet18", {"name": "alexnet", "devices": ["cpu"], "batch_sizes": [8], "modes": ["infer"],
                            "timing": {"processes": 4}}],
}


def test_the_count_is_what_the_matrix_makes_and_the_floor_follows_the_launcher():
    config = prepare(CONFIG, known_models=["resnet18", "alexnet"])
    cells = matrix.expand(config)
    groups = matrix.processes_per_cell(config)
    assert sum(n for _, _, n in groups) == len(cells) == study_size.check(config, forks=True)
    assert sorted(groups) == sorted(
        (torch, processes, sum(1 for c in cells if (c.torch, c.pilot) == (torch, processes)))
        for torch, processes in {(c.torch, c.pilot) for c in cells})
    processes = {torch: sum(c.pilot for c in cells if c.torch == torch) for torch in ("current", "2.5")}
    forked = processes["current"] * study_size.START_S_FORKED + processes["2.5"] * study_size.START_S_FRESH
    assert study_size.floor_seconds(groups, forks=True) == pytest.approx(forked)
    fresh = (processes["current"] + processes["2.5"]) * study_size.START_S_FRESH
    assert study_size.floor_seconds(groups, forks=False) == pytest.approx(fresh)


def test_above_max_cells_the_config_must_say_so():
    config = prepare({**CONFIG, "max_cells": 100}, known_models=["resnet18", "alexnet"])
    count = len(matrix.expand(config))
    with pytest.raises(ConfigError, match=rf"this study has {count:,} cells, more than max_cells \(100\).*"
                                          rf"set max_cells: {count} in the config"):
        study_size.check(config, forks=True)
    assert study_size.check({**config, "max_cells": count}, forks=True) == count


@pytest.mark.parametrize(("seconds", "text"), [(40, "40 s"), (600, "10 min"), (3 * 3600, "3.0 h"),
                                               (72_000, "20.0 h"), (5 * 86400, "5.0 days")])
def test_durations_read_in_the_unit_one_plans_with(seconds, text):
    assert study_size.duration(seconds) == text


def test_the_summary_counts_what_is_left(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = prepare({**CONFIG, "torch_versions": ["current"], "workload": "synthetic"}, known_models=["resnet18", "alexnet"])
    cells = matrix.expand(config)
    for cell in cells[:-1]:
        (tmp_path / cell.path).parent.mkdir(parents=True)
        (tmp_path / cell.path).write_bytes(b"")
    left = cells[-1].pilot * study_size.START_S_FORKED
    assert study_size.summary(cells, forks=True) == (
        f"speedatlas: {len(cells)} cells in this study, 1 to measure: at least {left:.0f} s "
        "(cell start-up alone; the timed steps come on top)")
    (tmp_path / cells[-1].path).parent.mkdir(parents=True)
    (tmp_path / cells[-1].path).write_bytes(b"")
    assert study_size.summary(cells, forks=True) == f"speedatlas: {len(cells)} cells in this study, all measured"


def test_a_file_measured_for_other_settings_is_counted_as_to_measure(tmp_path, monkeypatch):
    """Two studies giving one cell key different settings (here the input size) take turns
    measuring it: the start-up line must say so instead of "all measured"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from speedatlas import cellkey
    from speedatlas.plan import stale_cells

    monkeypatch.chdir(tmp_path)
    config = prepare({**CONFIG, "torch_versions": ["current"], "workload": "synthetic"}, known_models=["resnet18", "alexnet"])
    cells = matrix.expand(config)
    wanted = {cell.path: cellkey.spec_sha256(cell.spec()) for cell in cells}
    for i, cell in enumerate(cells):
        (tmp_path / cell.path).parent.mkdir(parents=True)
        recorded = "another study's spec" if i < 2 else wanted[cell.path]
        pq.write_table(pa.table({"spec_sha256": [recorded, recorded]}), tmp_path / cell.path)
    stale = stale_cells.measured_for_other_settings(wanted)
    assert sorted(stale) == sorted(cell.path for cell in cells[:2])
    line = study_size.summary(cells, forks=True, stale=stale)
    assert line.startswith(f"speedatlas: {len(cells)} cells in this study, 2 to measure (2 of them measured before "
                           "for other settings: input size, timing or a factory's arguments differ): at least ")
    # a file without the column (an older pipeline's) or unreadable counts as measured; past the
    # limit nothing is read and the line says the settings were not checked
    pq.write_table(pa.table({"x": [1]}), tmp_path / cells[0].path)
    (tmp_path / cells[1].path).write_bytes(b"not parquet")
    assert stale_cells.measured_for_other_settings(wanted) == []
    assert stale_cells.measured_for_other_settings(wanted, limit=len(cells) - 1) is None
    assert study_size.summary(cells, forks=True, stale=None).endswith(
        "all measured (their settings not checked: a cell measured for other settings is measured again)")
