"""The mnist_epoch workload: the seed study's end-to-end epoch, timed honestly.

The seed timed one training epoch over the first 1000 MNIST images, resized to 224×224 and
turned into 3 channels by torchvision transforms, loaded by a shuffling DataLoader with worker
processes: input pipeline and compute together, no warm-up, no device synchronisation. We keep
the workload and fix the clock: one untimed warm-up epoch (reported as `first_epoch_s`, the
seed's own number), then whole timed epochs, each closed by a device synchronize, with the time
the process spent blocked on the DataLoader recorded apart from the rest, so the report can say
how much of a CPU-vs-GPU gap is input pipeline rather than compute.

Runner side: standard library, numpy, torch and torchvision only (torch >= 2.0).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torchvision import transforms

from speedatlas.measure.protocol import compute_dtype, timing
from speedatlas.measure.hardware import devices
from speedatlas.measure.models import zoo
from speedatlas.measure.protocol import steps
from speedatlas.measure.protocol import rows
from speedatlas.measure.protocol.workloads import CellStart

MNIST_TRAIN_IMAGES = 60000
MNIST_CLASSES = 10
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_UBYTE = 0x08


class DataNotFound(FileNotFoundError):
    """The configured MNIST folder holds no training set we can read."""


# ---------------------------------------------------------------------------------------------
# Data: real MNIST (torchvision's loader, or the IDX files read here) or a synthetic twin.


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format), plain or gzip-compressed, as a uint8 tensor."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code != IDX_UBYTE:
        raise ValueError(f"{path}: IDX type code {code:#04x}; MNIST files hold unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: {data.size} bytes of data, but the header says {dims}")
    return torch.from_numpy(data.reshape(dims).copy())


def find_idx_files(root: Path) -> tuple[Path, Path] | None:
    """The training images and labels under root: in MNIST/raw/ (torchvision's layout), raw/ or
    root itself, plain or .gz."""
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for suffix in ("", ".gz"):
            images, labels = (folder / (name + suffix) for name in IDX_FILES)
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def default_mnist_root() -> Path:
    """Where `download: true` without a mnist_root puts MNIST: the speedatlas cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "speedatlas" / "mnist"


def load_mnist(root: str | None, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's training images (uint8, N×28×28) and labels (int64) from disk, else downloaded.

    torchvision.datasets.MNIST reads its own layout (<root>/MNIST/raw, uncompressed); the IDX
    reader above covers the other common layouts and .gz files. Downloading is torchvision's.
    """
    folder = Path(root).expanduser() if root else default_mnist_root()
    try:
        dataset = torchvision.datasets.MNIST(str(folder), train=True, download=False)
        return dataset.data, dataset.targets.long()
    except RuntimeError:
        pass
    found = find_idx_files(folder)
    if found is not None:
        images, labels = (read_idx(path) for path in found)
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST files under {folder} do not match: images {tuple(images.shape)}, labels {tuple(labels.shape)}")
        return images, labels.long()
    if download:
        dataset = torchvision.datasets.MNIST(str(folder), train=True, download=True)
        return dataset.data, dataset.targets.long()
    raise DataNotFound(
        f"no MNIST training set under {str(folder)!r}: looked for {IDX_FILES[0]}[.gz] and "
        f"{IDX_FILES[1]}[.gz] in MNIST/raw/, raw/ and the folder itself. Point data.mnist_root "
        "at it, set data.download: true, or set data.mnist_root: null for the synthetic MNIST"
    )


def synthetic_mnist(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stand-in with MNIST's shape and dtype: 28×28 uint8 images, labels 0-9.

    Every image goes through the same PIL transforms as a real one, and PIL's resize costs the
    same whatever the pixels are, so the input pipeline costs what it costs on MNIST.
    """
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, MNIST_CLASSES, (count,), generator=generator)
    return images, labels


class ArrayMNIST(torchvision.datasets.MNIST):
    """torchvision's MNIST dataset over images already in memory.

    Subclassing keeps torchvision's own __getitem__ (tensor -> PIL 'L' image -> transform), so
    real and synthetic images take exactly the seed's path. Module level, so DataLoader workers
    started with 'spawn' (macOS) can unpickle it.
    """

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, transform: Callable | None = None) -> None:
        torchvision.datasets.VisionDataset.__init__(self, "", transform=transform)
        self.train = True
        self.data = data
        self.targets = targets


def seed_transform(size: int) -> Callable:
    """Resize(size) + Grayscale(3) + ToTensor, as in the seed."""
    return transforms.Compose([transforms.Resize(size), transforms.Grayscale(num_output_channels=3), transforms.ToTensor()])


def build_dataset(data: dict[str, Any], input_size: int, seed: int) -> tuple[ArrayMNIST, str]:
    """The first `images` training images, and the name of where they came from."""
    count = data["images"]
    if data["mnist_root"] is None and not data["download"]:
        images, labels = synthetic_mnist(count, seed)
        name = "synthetic-mnist"
    else:
        images, labels = load_mnist(data["mnist_root"], data["download"])
        if len(images) < count:
            raise ValueError(f"data.images is {count}, but the MNIST training set found holds only {len(images)} images")
        images, labels = images[:count], labels[:count]
        name = "mnist"
    return ArrayMNIST(images, labels, seed_transform(input_size)), name


def make_loader(dataset: ArrayMNIST, batch: int, num_workers: int, seed: int,
                persistent_workers: bool = False) -> torch.utils.data.DataLoader:
    """The seed's DataLoader: shuffled (seeded here), `num_workers` workers, last batch kept.

    persistent_workers keeps the workers between epochs (torch.utils.data.DataLoader's own
    option; it needs num_workers > 0). macOS starts workers with spawn (Python's default there
    since 3.8), and each spawned worker re-imports torch: without it, every epoch on a Mac pays
    seconds of interpreter start-up (issue 13: 6.2-6.8 s vs 0.08 s under fork for 32 images).
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, num_workers=num_workers, generator=generator,
        persistent_workers=bool(persistent_workers and num_workers > 0),
    )


def start_method(num_workers: int) -> str | None:
    """How DataLoader workers start here: the default multiprocessing context's method (the
    DataLoader uses it when given no multiprocessing_context); None without workers."""
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=False) if num_workers > 0 else None


# ---------------------------------------------------------------------------------------------
# Steps and epochs.


@dataclass
class Epoch:
    seconds: float  # the whole epoch, closed by a device synchronize
    data_wait_s: float  # blocked on the DataLoader (iterator creation and every next())
    first_batch_s: float | None  # from creating the iterator to the first batch (worker start-up)
    steps: int
    images: int
    last: torch.Tensor | None  # the last step's loss (train) or logits (infer)


def run_epoch(
    loader: Any,
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    to_device: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    synchronize: Callable[[], None],
) -> Epoch:
    """One pass over the loader, timed as the seed did (iterator creation included, so worker
    start-up counts) but ending with a device synchronize."""
    synchronize()
    start = time.perf_counter()
    waited = time.perf_counter()
    iterator = iter(loader)
    wait = time.perf_counter() - waited
    steps = images = 0
    last = None
    first_batch = None
    while True:
        waited = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:  # also joins the workers of this epoch
            wait += time.perf_counter() - waited
            break
        wait += time.perf_counter() - waited
        if first_batch is None:
            first_batch = time.perf_counter() - start
        inputs, labels = to_device(*batch)
        last = step(inputs, labels)
        steps += 1
        images += len(labels)
    del iterator
    synchronize()
    return Epoch(time.perf_counter() - start, wait, first_batch, steps, images, last)


def measure(spec: dict[str, Any], base: dict[str, Any], start: CellStart) -> list[dict[str, Any]]:
    """Warm-up epoch + `repeats` timed epochs of one cell; one row per timed epoch.

    `base` already holds the key columns and the environment (runner.measure); failures become
    the cell's status, as for synthetic cells.
    """
    device = spec["device"]
    data = spec["data"]
    persistent = bool(data.get("persistent_workers", True)) and data["num_workers"] > 0
    base = {**base, "num_workers": data["num_workers"], "images_per_epoch": data["images"],
            "persistent_workers": persistent, "start_method": start_method(data["num_workers"])}
    dev = devices.get(device)
    checked: dict[str, Any] = {}  # compute_dtype, once the warm-up epoch ran
    warned = compute_dtype.capture()  # the cell's warnings: autocast fallback, mps CPU fallback
    try:
        base["torchvision_version"] = torchvision.__version__
        dataset, base["dataset"] = build_dataset(data, spec["input_size"], spec["seed"])
        loader = make_loader(dataset, spec["batch"], data["num_workers"], spec["seed"], persistent)
        flops = zoo.count_flops(spec["model"], spec["num_classes"], spec["batch"], spec["input_size"], spec["mode"])
        probe = dev.memory_probe()
        eager = zoo.build_model(spec["model"], spec["num_classes"], spec["seed"]).to(device)
        model, _ = steps.apply_variant(eager, torch.empty(1, 3, 1, 1), spec["variant"], device)
        channels_last = spec["variant"] == "channels_last"

        def to_device(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            images = images.to(device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            return images, labels.to(device)

        # the seed fed only the first logit to its loss against float labels (a bug); this is the
        # proper cross-entropy over the class logits and integer labels
        step = steps.make_batch_step(model, spec["mode"], device, spec["dtype"])
        sync = dev.synchronize
        setup_s = time.perf_counter() - start.process_t0
        # compute_dtype.py's check over the untimed warm-up epoch (not under compile, whose
        # graph would trace the hooks in: compile cells of this workload record none).
        recorder = compute_dtype.DtypeRecorder()
        if spec["variant"] != "compile":
            recorder.attach(eager)
        first = run_epoch(loader, step, to_device, sync)
        recorder.detach()
        checked["compute_dtype"] = recorder.compute_dtype()
        compute_dtype.check(spec["dtype"], checked["compute_dtype"], warned.messages)
        timing.check_finite(first.last, "the warm-up epoch's last result")
        started_at = timing.utcnow()
        epochs = []
        for _ in range(spec["repeats"]):
            epochs.append(run_epoch(loader, step, to_device, sync))
            last_value = timing.check_finite(epochs[-1].last, "a timed epoch's last result")
        finished_at = timing.utcnow()
        memory = probe.columns()
    except Exception as exc:  # noqa: BLE001 - every failure is a recorded result
        warned.stop()
        return rows.failed_rows({**base, **checked, "cpu_fallback_ops": warned.fallback_ops_json()}, exc, device)
    warned.stop()

    seconds = [e.seconds for e in epochs]
    cell = {
        **rows.ok_columns({**base, **memory, **checked}, seconds, setup_s=setup_s, lock_wait_s=start.lock_wait_s,
                          launcher=start.launcher, flops=flops, mode=spec["mode"], final_value=last_value,
                          compile_time_s=first.seconds if spec["variant"] == "compile" else None,
                          cpu_fallback_ops=warned.fallback_ops_json()),
        "first_epoch_s": first.seconds,
        "first_epoch_data_wait_s": first.data_wait_s,
        "first_epoch_first_batch_s": first.first_batch_s,
        "started_at": started_at,
        "finished_at": finished_at,
        # energy is read around the synthetic workload's timed blocks only (measure/hardware/energy.py)
        "energy_source": "unavailable",
        "energy_note": "energy is measured for the synthetic workload only",
    }
    return [
        {
            **cell,
            "repeat": index,
            "step_time_s": e.seconds / e.steps,
            "items_per_s": e.images / e.seconds,
            "epoch_time_s": e.seconds,
            "data_wait_s": e.data_wait_s,
            "first_batch_s": e.first_batch_s,
        }
        for index, e in enumerate(epochs)
    ]
