"""The mnist_epoch workload on the CPU: MNIST files, the synthetic twin, timed epochs."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from speedatlas import cellkey
from speedatlas.measure import cellio
from speedatlas.measure.process.runner import measure
from speedatlas.measure.protocol.workloads import mnist_epoch


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (MNIST's format), gzip-compressed if the name ends in .gz."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def write_tiny_mnist(root: Path, count: int = 12, layout: str = "torchvision", gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A tiny MNIST training set in the IDX format: torchvision's layout (root/MNIST/raw) or flat."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count, dtype=np.uint8)
    folder = root / "MNIST" / "raw" if layout == "torchvision" else root
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    assert np.array_equal(mnist_epoch.read_idx(tmp_path / name).numpy(), array)


def test_idx_rejects_other_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        mnist_epoch.read_idx(tmp_path / "bad")


@pytest.mark.parametrize(("layout", "gz"), [("torchvision", False), ("flat", True), ("flat", False)])
def test_real_mnist_is_read_from_common_layouts(tmp_path, layout, gz):
    images, labels = write_tiny_mnist(tmp_path, layout=layout, gz=gz)
    data, targets = mnist_epoch.load_mnist(str(tmp_path), download=False)
    assert data.dtype == torch.uint8 and tuple(data.shape) == (12, 28, 28)
    assert np.array_equal(data.numpy(), images) and np.array_equal(targets.numpy(), labels)
    assert targets.dtype == torch.int64


def test_missing_mnist_says_where_it_looked(tmp_path):
    with pytest.raises(mnist_epoch.DataNotFound) as error:
        mnist_epoch.load_mnist(str(tmp_path / "nowhere"), download=False)
    assert "nowhere" in str(error.value) and "train-images-idx3-ubyte" in str(error.value)
    assert "data.mnist_root" in str(error.value)


def test_synthetic_mnist_is_deterministic_and_shaped_like_mnist():
    a, la = mnist_epoch.synthetic_mnist(20, seed=3)
    b, lb = mnist_epoch.synthetic_mnist(20, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.dtype == torch.uint8 and tuple(a.shape) == (20, 28, 28)
    assert int(la.min()) >= 0 and int(la.max()) <= 9


def test_dataset_takes_the_seed_transform_path():
    data = {"mnist_root": None, "download": False, "images": 5, "num_workers": 0}
    dataset, name = mnist_epoch.build_dataset(data, input_size=40, seed=0)
    image, label = dataset[0]
    assert name == "synthetic-mnist" and len(dataset) == 5
    assert tuple(image.shape) == (3, 40, 40) and image.dtype == torch.float32
    assert torch.equal(image[0], image[1]) and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    assert isinstance(label, int)


class SlowLoader:
    """A loader whose batches take `wait` seconds each to arrive."""

    def __init__(self, batches: int, wait: float) -> None:
        self.batches, self.wait = batches, wait

    def __iter__(self):
        for _ in range(self.batches):
            time.sleep(self.wait)
            yield torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)


def test_run_epoch_separates_data_wait_from_compute():
    events = []

    def step(x, y):
        time.sleep(0.02)
        events.append("step")
        return torch.tensor(1.0)

    result = mnist_epoch.run_epoch(SlowLoader(5, 0.03), step, lambda x, y: (x, y), lambda: events.append("sync"))
    assert result.steps == 5 and result.images == 10
    assert events[0] == "sync" and events[-1] == "sync"  # the clock starts and stops synchronised
    assert 0.14 <= result.data_wait_s < 0.3
    assert result.seconds >= result.data_wait_s + 5 * 0.02


SPEC = {
    "machine": "t", "workload": "mnist_epoch", "torch": "current", "device": "cpu", "model": "resnet18",
    "dtype": "float32", "mode": "train", "variant": "eager", "batch": 4, "input_size": 32,
    "num_classes": 10, "warmup": 3, "repeats": 2, "steps_per_repeat": 3, "cpu_threads": 1, "seed": 0,
    "data": {"mnist_root": None, "download": False, "images": 10, "num_workers": 0, "epoch_protocol": 1},
}


def check_epoch_rows(rows, images=10, steps=3):
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0].get("error")
    for row in rows:
        assert row["epoch_time_s"] > 0 and 0 <= row["data_wait_s"] < row["epoch_time_s"]
        assert row["step_time_s"] == pytest.approx(row["epoch_time_s"] / steps)
        assert row["items_per_s"] == pytest.approx(images / row["epoch_time_s"])
        assert row["first_epoch_s"] > 0 and row["images_per_epoch"] == images
        assert row["final_loss"] > 0 and row["threads"] == 1
    assert cellio.rows_to_table(rows).num_rows == 2


def test_epochs_on_synthetic_mnist():
    rows = measure(SPEC, cellkey.row_columns(SPEC, 1))
    check_epoch_rows(rows)
    assert rows[0]["dataset"] == "synthetic-mnist" and rows[0]["num_workers"] == 0
    assert rows[0]["energy_source"] == "unavailable" and "synthetic workload only" in rows[0]["energy_note"]


def test_epochs_on_a_real_format_mnist_with_a_worker(tmp_path):
    write_tiny_mnist(tmp_path, count=12, layout="flat", gz=True)
    spec = {**SPEC, "data": {**SPEC["data"], "mnist_root": str(tmp_path), "num_workers": 1}}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    check_epoch_rows(rows)
    assert rows[0]["dataset"] == "mnist" and rows[0]["num_workers"] == 1


def test_epoch_inference_and_missing_data_are_results(tmp_path):
    rows = measure({**SPEC, "mode": "infer"}, cellkey.row_columns(SPEC, 1))
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["final_loss"] is None
    spec = {**SPEC, "data": {**SPEC["data"], "mnist_root": str(tmp_path / "absent")}}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    assert len(rows) == 1 and rows[0]["status"] == "error" and "no MNIST training set" in rows[0]["error"]
    write_tiny_mnist(tmp_path, count=6)
    spec = {**SPEC, "data": {**SPEC["data"], "mnist_root": str(tmp_path)}}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    assert rows[0]["status"] == "error" and "holds only 6 images" in rows[0]["error"]


def test_epoch_records_start_method_first_batch_and_compute_dtype(tmp_path):
    """Issue 13 items 1 and 6: persistent workers (default), the start method, time to first batch."""
    spec = {**SPEC, "data": {**SPEC["data"], "num_workers": 1}}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    check_epoch_rows(rows)
    import multiprocessing

    assert rows[0]["persistent_workers"] is True and rows[0]["start_method"] == multiprocessing.get_start_method()
    assert all(0 < r["first_batch_s"] <= r["epoch_time_s"] for r in rows)
    # the warm-up epoch starts the workers; with persistent workers the timed epochs do not
    assert rows[0]["first_epoch_first_batch_s"] > 0
    assert rows[0]["compute_dtype"] == "float32" and rows[0]["cpu_fallback_ops"] == "[]"


def test_epoch_seed_behaviour_is_one_switch_away():
    spec = {**SPEC, "data": {**SPEC["data"], "num_workers": 1, "persistent_workers": False}}
    rows = measure(spec, cellkey.row_columns(spec, 1))
    check_epoch_rows(rows)
    assert rows[0]["persistent_workers"] is False
    no_workers = measure(SPEC, cellkey.row_columns(SPEC, 1))
    assert no_workers[0]["start_method"] is None and no_workers[0]["persistent_workers"] is False
