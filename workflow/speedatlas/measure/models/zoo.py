"""torchvision's models: built with random weights, a seeded batch for them, their FLOPs.

Runner side: torch and torchvision only (torch >= 2.0). The step that is timed: protocol/steps.py.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision


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
