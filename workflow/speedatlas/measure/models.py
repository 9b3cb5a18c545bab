"""Build torchvision models and the step functions that are timed.

Runner side: torch and torchvision only (torch >= 2.0).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import torch
import torchvision

from speedatlas.measure.devices import device_type

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_model(name: str, num_classes: int, seed: int) -> torch.nn.Module:
    """Random weights (weights=None: nothing is downloaded), the requested head size."""
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if name in ("inception_v3", "googlenet"):
        kwargs["aux_logits"] = False  # aux heads only exist for pretrained-style training
        kwargs["init_weights"] = True
    return torchvision.models.get_model(name, **kwargs)


def synthetic_batch(batch: int, input_size: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded images and labels, made on the CPU so every device sees the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, input_size, input_size, generator=generator)
    labels = torch.randint(0, num_classes, (batch,), generator=generator)
    return images, labels


def logits_of(output: Any) -> torch.Tensor:
    """Some torchvision models return a namedtuple (InceptionOutputs); take the logits. A user's
    model may return a dict or object with `logits` (Hugging Face) or a tuple (logits first)."""
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, dict) and "logits" in output:
        return output["logits"]
    if isinstance(output, (tuple, list)) and output:
        return logits_of(output[0])
    return output


def autocast_context(device: str, dtype: str) -> Callable[[], contextlib.AbstractContextManager]:
    """float32 runs as is; float16/bfloat16 run under torch.autocast for the device."""
    if dtype == "float32":
        return contextlib.nullcontext
    kind = device_type(device)
    return lambda: torch.autocast(device_type=kind, dtype=DTYPES[dtype])


def _grad_scaler(device: str, dtype: str):
    """float16 training on CUDA needs loss scaling, as any real fp16 training loop has."""
    if dtype != "float16" or device_type(device) != "cuda":
        return None
    amp_scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    return amp_scaler("cuda") if amp_scaler is not None else torch.cuda.amp.GradScaler()


def make_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mode: str,
    device: str,
    dtype: str,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[], torch.Tensor]:
    """Return step(): make_batch_step's step on one fixed batch resident on the device.

    The step returns the loss (train) or the logits (infer) without reading them back, so the
    host never waits on the device inside the timed region.
    """
    return functools.partial(make_batch_step(model, mode, device, dtype, loss_fn), images, labels)


def make_batch_step(
    model: torch.nn.Module,
    mode: str,
    device: str,
    dtype: str,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return step(images, labels): one training step (forward, backward, Adam lr 1e-3) or one
    inference forward, on whatever batch it is given (a resident batch, or a DataLoader's).

    `loss_fn(logits, labels)` defaults to cross-entropy on class labels (a language model passes
    its next-token loss, speedatlas.measure.custom_models).
    """
    autocast = autocast_context(device, dtype)
    if mode == "infer":
        model.eval()

        def infer_step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), autocast():
                return logits_of(model(images))

        return infer_step

    model.train()
    loss_fn = loss_fn or torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = _grad_scaler(device, dtype)

    def train_step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(logits_of(model(images)), labels)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss.detach()

    return train_step


def count_flops(name: str, num_classes: int, batch: int, input_size: int, mode: str) -> float | None:
    """FLOPs of one step of a torchvision model, counted on the meta device (no compute, no memory).

    FlopCounterMode is unreliable under torch.compile, so we always count the eager graph.
    Returns None where torch has no flop counter (< 2.1) or counting fails.
    """
    try:
        with torch.device("meta"):
            model = build_model(name, num_classes, seed=0)
        images = torch.empty(batch, 3, input_size, input_size, device="meta")
        labels = torch.zeros(batch, dtype=torch.long, device="meta")
        return step_flops(model, images, labels, mode)
    except Exception:  # noqa: BLE001 - a missing count must never cost the measurement
        return None


def step_flops(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mode: str) -> float | None:
    """FLOPs (2 per multiply-add) of one inference forward, or one training forward + backward.

    The optimizer step is not counted (it is O(parameters), not O(batch)).
    """
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False)
    with counter:
        if mode == "infer":
            model.eval()
            with torch.no_grad():
                logits_of(model(images))
        else:
            model.train()
            torch.nn.functional.cross_entropy(logits_of(model(images)), labels).backward()
    return float(counter.get_total_flops())


def apply_variant(model, images, variant: str, device: str):
    """eager as is; channels_last memory format; compile through torch.compile."""
    import torch

    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    elif variant == "compile":
        if not hasattr(torch, "compile"):
            raise NotImplementedError(f"torch.compile is not supported by torch {torch.__version__}")
        model = torch.compile(model)
    return model, images
