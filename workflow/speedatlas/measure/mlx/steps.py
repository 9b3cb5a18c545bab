"""The step an MLX cell times: one training step (forward, cross-entropy, backward, Adam lr 1e-3)
or one inference forward, eager or compiled with mx.compile, each complete only once evaluated.

MLX is lazy: calling the model only records a graph. A step is complete after
`mx.eval(loss, model.parameters(), optimizer.state)` (training: the new weights, BatchNorm
statistics and Adam moments are computed, not merely described; the random key that dropout
advanced is evaluated with them) or `mx.eval(output)`
(inference). Timing without that measures graph building. Each step evaluates itself, as every
MLX training loop does (mlx docs, "optimizers": `mx.eval(model.parameters(), optimizer.state)`
after `optimizer.update`), so the timing protocol's block-end synchronize only confirms that
nothing is left in flight.

mx.compile: the mutable state is declared, `state = [model.state, optimizer.state,
mx.random.state]` (dropout draws random numbers), and passed as the compiled function's inputs
and outputs (mlx-examples cifar/main.py; MLX docs, "Compilation", compiling training graphs).
The first call traces and compiles; the timing protocol keeps it out of the samples.

Adam: `optim.Adam(learning_rate=1e-3, bias_correction=True)`. MLX's Adam leaves out the bias
correction by default (mlx/optimizers/optimizers.py, Adam.__init__: bias_correction=False);
torch.optim.Adam applies it, so without the flag the two would run different optimizers.

The loss is computed in float32 from the logits (upcast), as torch's autocast runs
cross_entropy in float32; the next-token loss of a language model is that of
speedatlas.measure.models.custom (position t's logits against token t+1).
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

LEARNING_RATE = 1e-3


def loss_function(language_model: bool) -> Callable[[nn.Module, mx.array, mx.array], mx.array]:
    """loss(model, inputs, targets): mean cross-entropy of the classifier or of the next token."""
    if language_model:
        def next_token_loss(model: nn.Module, tokens: mx.array, targets: mx.array) -> mx.array:
            logits = model(tokens)[:, :-1].astype(mx.float32)
            return nn.losses.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="mean")

        return next_token_loss

    def classify_loss(model: nn.Module, images: mx.array, labels: mx.array) -> mx.array:
        return nn.losses.cross_entropy(model(images).astype(mx.float32), labels, reduction="mean")

    return classify_loss


def make_step(model: nn.Module, inputs: mx.array, targets: mx.array, mode: str, compiled: bool,
              language_model: bool) -> Callable[[], mx.array]:
    """step(): one complete (evaluated) step on the resident batch; returns the loss or logits."""
    if mode == "infer":
        model.eval()
        state = [model.state]
        forward = mx.compile(lambda x: model(x), inputs=state) if compiled else model

        def infer_step() -> mx.array:
            output = forward(inputs)
            mx.eval(output)
            return output

        return infer_step

    model.train()
    optimizer = optim.Adam(learning_rate=LEARNING_RATE, bias_correction=True)
    optimizer.init(model.trainable_parameters())
    loss_and_grad = nn.value_and_grad(model, loss_function(language_model))

    def update(x: mx.array, y: mx.array) -> mx.array:
        loss, grads = loss_and_grad(model, x, y)
        optimizer.update(model, grads)
        return loss

    state = [model.state, optimizer.state, mx.random.state]
    update_fn = mx.compile(update, inputs=state, outputs=state) if compiled else update

    def train_step() -> mx.array:
        loss = update_fn(inputs, targets)
        mx.eval(loss, model.parameters(), optimizer.state, mx.random.state)
        return loss

    return train_step
