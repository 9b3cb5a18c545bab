"""The step that is timed: one training step (forward, loss, backward, Adam) or one inference
forward of a model on a batch, under autocast for float16/bfloat16, in the requested variant.

Runner side: torch only (torch >= 2.0).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import torch

from speedatlas.measure.hardware.devices import device_type
from speedatlas.measure.models.zoo import logits_of


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


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
    its next-token loss, speedatlas.measure.models.custom).
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
