"""Both sides of an MLX cell: the seeded torch model with its batch, and the MLX port holding
the same weights and the same batch.

The torch side is built exactly as the torch cell of the same key builds it
(speedatlas.measure.models.zoo for torchvision's ResNets, .custom for the built-in
transformers: same seed, same inputs, same targets, same FLOP count), on the CPU; the port gets
its weights from there (speedatlas.measure.mlx.convert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
from mlx.utils import tree_flatten

from speedatlas.measure.mlx import convert, resnet, transformers
from speedatlas.measure.models import custom, zoo

MX_DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


@dataclass
class TorchSide:
    model: torch.nn.Module
    inputs: torch.Tensor  # images (B, 3, H, W) or token ids (B, L), on the CPU
    targets: torch.Tensor  # class labels (B,) or next tokens (B, L-1)
    language_model: bool
    flops: float | None


def torch_side(spec: dict[str, Any]) -> TorchSide:
    """The torch cell's model, batch and FLOPs for this cell's key (CPU, float32)."""
    source = spec.get("model_source")
    if not source:
        model = zoo.build_model(spec["model"], spec["num_classes"], spec["seed"])
        images, labels = zoo.synthetic_batch(spec["batch"], spec["input_size"], spec["num_classes"], spec["seed"])
        flops = zoo.count_flops(spec["model"], spec["num_classes"], spec["batch"], spec["input_size"], spec["mode"])
        return TorchSide(model, images, labels, False, flops)
    flops, head, classes = custom.meta_pass(source, spec["num_classes"], spec["batch"], spec["mode"], spec["seed"])
    model = custom.build(source, spec["num_classes"], spec["seed"])
    inputs = custom.make_inputs(source, spec["batch"], spec["seed"])
    targets = custom.make_targets(head, classes, inputs, spec["seed"])
    return TorchSide(model, inputs, targets, head == custom.LANGUAGE_MODEL, flops)


def build_port(spec: dict[str, Any]) -> nn.Module:
    """The MLX model of the cell's architecture (random weights until load_weights)."""
    source = spec.get("model_source")
    if not source:
        return getattr(resnet, spec["model"])(spec["num_classes"])
    given = source["input"]
    return getattr(transformers, source["builtin"])(
        num_classes=spec["num_classes"], vocab=given["vocab"], length=given["length"], **source["args"]
    )


def load_weights(port: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Every parameter of the port from torch's (names and shapes checked first), evaluated."""
    convert.check_same_names({k: v.shape for k, v in tree_flatten(port.parameters())}, weights)
    port.load_weights([(key, mx.array(value)) for key, value in weights.items()], strict=True)
    mx.eval(port.parameters())


def mlx_batch(side: TorchSide, dtype: str) -> tuple[mx.array, mx.array]:
    """The same batch for MLX: images channels-last (NHWC) in the cell's dtype, ids as int32."""
    if side.inputs.is_floating_point():
        inputs = mx.array(side.inputs.permute(0, 2, 3, 1).contiguous().numpy()).astype(MX_DTYPES[dtype])
    else:
        inputs = mx.array(side.inputs.numpy().astype(np.int32))
    return inputs, mx.array(side.targets.numpy().astype(np.int32))


def port_of(spec: dict[str, Any], side: TorchSide, layout: tuple[int, ...] = convert.CONV_LAYOUT) -> nn.Module:
    """The port with the torch model's weights, in the cell's dtype (MLX has no autocast: the
    parameters themselves are cast for float16/bfloat16, BatchNorm statistics included)."""
    port = build_port(spec)
    load_weights(port, convert.torch_weights(side.model, spec["model"], layout))
    if spec["dtype"] != "float32":
        port.set_dtype(MX_DTYPES[spec["dtype"]])
    return port
