"""Cells of models that are not torchvision's: a user's factory or a built-in transformer.

Runner side: standard library and torch only (torch >= 2.0). The cell's spec carries
`model_source` (speedatlas.plan.model_entries): {builtin | factory + sha256, args, input}.

Inputs are seeded and made on the CPU, like torchvision cells' images: images
(batch, 3, size, size) from a normal distribution, or token ids (batch, length) uniform in
[0, vocab). The head is chosen from the model's output shape:
    (batch, classes)         -> cross-entropy on seeded labels in [0, classes)
    (batch, length, vocab)   -> language model: cross-entropy of position t's logits on token t+1
Anything else is the cell's error, as is a factory that raises or returns no nn.Module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from speedatlas.measure.models.zoo import logits_of

CLASSIFY, LANGUAGE_MODEL = "classify", "language_model"


class HeadError(ValueError):
    """The model's output fits neither the classification nor the language-model head."""


def load_factory(source: dict[str, Any]) -> Callable[..., Any]:
    """The factory function: a built-in transformer, a function of a .py file, or of a module.

    A file is loaded under a name of its own (its hash) with its folder first on sys.path, so
    it may import modules beside it; a module is imported with the working directory on sys.path.
    """
    if "builtin" in source:
        from speedatlas.measure.models import transformers

        return transformers.BUILTINS[source["builtin"]]
    target, _, function = source["factory"].rpartition(":")
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = Path(target) if Path(target).is_absolute() else Path.cwd() / target
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(f"speedatlas_factory_{source['sha256'][:16]}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load factory file {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(target)
    if not hasattr(module, function):
        raise AttributeError(f"factory {source['factory']!r}: no function {function!r}")
    return getattr(module, function)


def build(source: dict[str, Any], num_classes: int, seed: int) -> torch.nn.Module:
    """Seeded weights: factory(num_classes=..., **args); built-ins also get the input's vocab and length."""
    factory = load_factory(source)
    kwargs = dict(source["args"])
    if "builtin" in source:
        kwargs.update(vocab=source["input"]["vocab"], length=source["input"]["length"])
    torch.manual_seed(seed)
    model = factory(num_classes=num_classes, **kwargs)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"factory {source.get('factory', source.get('builtin'))!r} returned "
                        f"{type(model).__name__}, not a torch.nn.Module")
    return model


def make_inputs(source: dict[str, Any], batch: int, seed: int, device: str = "cpu") -> torch.Tensor:
    """Seeded images or token ids (on the CPU, then moved, so every device sees the same numbers)."""
    spec = source["input"]
    if device == "meta":
        if spec["kind"] == "tokens":
            return torch.zeros(batch, spec["length"], dtype=torch.long, device="meta")
        return torch.empty(batch, 3, spec["size"], spec["size"], device="meta")
    generator = torch.Generator().manual_seed(seed)
    if spec["kind"] == "tokens":
        return torch.randint(0, spec["vocab"], (batch, spec["length"]), generator=generator).to(device)
    return torch.randn(batch, 3, spec["size"], spec["size"], generator=generator).to(device)


def head_of(output: Any, source: dict[str, Any], batch: int) -> tuple[str, int]:
    """(head, classes or vocab) for the model's output, or HeadError saying what was expected."""
    logits = logits_of(output)
    spec = source["input"]
    if not isinstance(logits, torch.Tensor):
        raise HeadError(f"the model returned {type(logits).__name__}, not a tensor of logits")
    shape = tuple(logits.shape)
    if len(shape) == 2 and shape[0] == batch and shape[1] >= 2:
        return CLASSIFY, shape[1]
    if spec["kind"] == "tokens" and shape == (batch, spec["length"], spec["vocab"]):
        return LANGUAGE_MODEL, spec["vocab"]
    expected = f"({batch}, classes)"
    if spec["kind"] == "tokens":
        expected += f" or (batch, length, vocab) = ({batch}, {spec['length']}, {spec['vocab']})"
    raise HeadError(f"output shape {shape} fits neither head; expected {expected}")


def make_targets(head: str, classes: int, inputs: torch.Tensor, seed: int) -> torch.Tensor:
    """Seeded labels for a classifier; the next tokens for a language model."""
    if head == LANGUAGE_MODEL:
        return inputs[:, 1:].contiguous()
    if inputs.device.type == "meta":
        return torch.zeros(inputs.shape[0], dtype=torch.long, device="meta")
    generator = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, classes, (inputs.shape[0],), generator=generator).to(inputs.device)


def loss_function(head: str) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    if head == CLASSIFY:
        return lambda output, labels: F.cross_entropy(logits_of(output), labels)

    def next_token_loss(output: Any, targets: torch.Tensor) -> torch.Tensor:
        logits = logits_of(output)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    return next_token_loss


def meta_pass(source: dict[str, Any], num_classes: int, batch: int, mode: str, seed: int,
              count: bool = True) -> tuple[float | None, str, int]:
    """One step on the meta device (no compute, no memory): (FLOPs or None, head, classes).

    FLOPs are 2 per multiply-add of one inference forward, or one training forward + backward
    (the optimizer step is not counted), as speedatlas.measure.models.zoo.step_flops counts them.
    `torch.utils.flop_counter` exists from torch 2.1; before that only the head is found.
    """
    counter: Any = contextlib.nullcontext()
    if count:
        try:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
        except ImportError:
            count = False
    with torch.device("meta"):
        model = build(source, num_classes, seed)
    inputs = make_inputs(source, batch, seed, device="meta")
    with counter:
        if mode == "infer":
            model.eval()
            with torch.no_grad():
                head, classes = head_of(model(inputs), source, batch)
        else:
            model.train()
            output = model(inputs)
            head, classes = head_of(output, source, batch)
            loss_function(head)(output, make_targets(head, classes, inputs, seed)).backward()
    flops = float(counter.get_total_flops()) if count else None
    return flops, head, classes


def count_flops(source: dict[str, Any], num_classes: int, batch: int, mode: str, seed: int = 0) -> float | None:
    """FLOPs of one step, or None where they cannot be counted."""
    try:
        return meta_pass(source, num_classes, batch, mode, seed)[0]
    except Exception:  # noqa: BLE001 - a missing count must never cost the measurement
        return None


def prepare(spec: dict[str, Any], device: str):
    """(flops, model, inputs, targets, loss) of the cell, all on the device.

    The head comes from a meta-device pass (which also counts FLOPs); a model that cannot run
    on the meta device gets one untimed forward of the real batch instead. HeadError, and
    whatever the factory raises, propagate: the runner makes them the cell's error.
    """
    source = spec["model_source"]
    flops: float | None = None
    head = None
    for count in (True, False):
        try:
            flops, head, classes = meta_pass(source, spec["num_classes"], spec["batch"], spec["mode"], spec["seed"], count)
            break
        except HeadError:
            raise
        except Exception:  # noqa: BLE001 - e.g. a factory that makes tensors on a fixed device
            continue
    model = build(source, spec["num_classes"], spec["seed"]).to(device)
    inputs = make_inputs(source, spec["batch"], spec["seed"], device)
    if head is None:
        flops, head, classes = device_pass(model, inputs, source, spec)
    targets = make_targets(head, classes, inputs, spec["seed"])
    return flops, model, inputs, targets, loss_function(head)


def device_pass(model: torch.nn.Module, inputs: torch.Tensor, source: dict[str, Any],
                spec: dict[str, Any]) -> tuple[float | None, str, int]:
    """For a model the meta device cannot run (e.g. one that reads a tensor's value): one untimed
    step of the real batch on the device finds the head and counts the FLOPs (as a warm-up step
    would; its gradients are dropped)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode

        counter: Any = FlopCounterMode(display=False)
    except ImportError:
        counter = None
    with counter or contextlib.nullcontext():
        if spec["mode"] == "infer":
            model.eval()
            with torch.no_grad():
                head, classes = head_of(model(inputs), source, spec["batch"])
        else:
            model.train()
            output = model(inputs)
            head, classes = head_of(output, source, spec["batch"])
            loss_function(head)(output, make_targets(head, classes, inputs, spec["seed"])).backward()
            model.zero_grad(set_to_none=True)
    return (float(counter.get_total_flops()) if counter is not None else None), head, classes
