"""The built-in transformers (speedatlas.measure.models.transformers) in MLX, with the same
module names, sizes and arguments, so the torch model's weights copy over by name.

    bert_base:  post-LN encoder; token + learned position + token-type embeddings, LayerNorm,
                dropout; blocks; tanh pooler on the first token; linear classifier.
    gpt2_small: pre-LN causal decoder; token + position embeddings, dropout; blocks; final
                LayerNorm; the head is the token embedding used as a linear layer (tied weights,
                `nn.Embedding.as_linear`), as in torch.

Attention: one fused `qkv` projection split into heads, as the torch block does. Without
dropout (inference, or dropout 0) it is `mx.fast.scaled_dot_product_attention`, MLX's fused
kernel, as torch's is `F.scaled_dot_product_attention`. In training with dropout > 0 torch's
SDPA drops attention probabilities (dropout_p); MLX's fused kernel has no dropout, so the port
writes the attention out (softmax in float32, as the fused kernel does, then dropout) to compute
the same function. GELU: exact (erf) for BERT, tanh approximation for GPT-2 (torch's
approximate="tanh" = MLX's gelu_approx, mlx/nn/layers/activations.py).
Written for speedatlas after reading mlx-examples' bert/model.py and mlx-lm's models/gpt2.py.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn


class Block(nn.Module):
    """Self-attention and a feed-forward layer with residuals (torch: transformers.Block)."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float, causal: bool, pre_norm: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads, self.p, self.causal, self.pre_norm = heads, dropout, causal, pre_norm
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn)
        self.fc2 = nn.Linear(ffn, width)
        self.act = nn.GELU(approx="precise" if pre_norm else "none")
        self.drop = nn.Dropout(dropout)

    def attention(self, x: mx.array) -> mx.array:
        batch, length, width = x.shape
        head = width // self.heads
        qkv = self.qkv(x).reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scale = 1.0 / math.sqrt(head)
        if self.training and self.p > 0:
            scores = (q * scale) @ k.transpose(0, 1, 3, 2)
            if self.causal:
                scores = scores + nn.MultiHeadAttention.create_additive_causal_mask(length, scores.dtype)
            probs = mx.softmax(scores.astype(mx.float32), axis=-1).astype(v.dtype)
            y = self.drop(probs) @ v
        else:
            y = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal" if self.causal else None)
        return self.drop(self.proj(y.transpose(0, 2, 1, 3).reshape(batch, length, width)))

    def feed_forward(self, x: mx.array) -> mx.array:
        return self.drop(self.fc2(self.act(self.fc1(x))))

    def __call__(self, x: mx.array) -> mx.array:
        if self.pre_norm:  # GPT-2
            x = x + self.attention(self.norm1(x))
            return x + self.feed_forward(self.norm2(x))
        x = self.norm1(x + self.attention(x))  # BERT
        return self.norm2(x + self.feed_forward(x))


class BertBase(nn.Module):
    def __init__(self, num_classes: int, vocab: int, length: int, layers: int = 12, width: int = 768,
                 heads: int = 12, ffn: int | None = None, dropout: float = 0.1, max_positions: int = 512) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max(max_positions, length), width)
        self.token_types = nn.Embedding(2, width)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        self.blocks = [Block(width, heads, ffn or 4 * width, dropout, causal=False, pre_norm=False)
                       for _ in range(layers)]
        self.pooler = nn.Linear(width, width)
        self.classifier = nn.Linear(width, num_classes)

    def __call__(self, tokens: mx.array) -> mx.array:
        positions = mx.arange(tokens.shape[1])
        x = self.tokens(tokens) + self.positions(positions) + self.token_types.weight[0]
        x = self.drop(self.norm(x))
        for block in self.blocks:
            x = block(x)
        pooled = mx.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.drop(pooled))


class Gpt2Small(nn.Module):
    def __init__(self, vocab: int, length: int, layers: int = 12, width: int = 768, heads: int = 12,
                 ffn: int | None = None, dropout: float = 0.1, max_positions: int = 1024) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max(max_positions, length), width)
        self.drop = nn.Dropout(dropout)
        self.blocks = [Block(width, heads, ffn or 4 * width, dropout, causal=True, pre_norm=True)
                       for _ in range(layers)]
        self.norm = nn.LayerNorm(width)

    def __call__(self, tokens: mx.array) -> mx.array:
        positions = mx.arange(tokens.shape[1])
        x = self.drop(self.tokens(tokens) + self.positions(positions))
        for block in self.blocks:
            x = block(x)
        return self.tokens.as_linear(self.norm(x))


def bert_base(num_classes: int, vocab: int = 30522, length: int = 128, **args) -> BertBase:
    return BertBase(num_classes, vocab, length, **args)


def gpt2_small(num_classes: int, vocab: int = 50257, length: int = 256, **args) -> Gpt2Small:
    """num_classes is unused, as in torch: the head has one output per vocabulary entry."""
    return Gpt2Small(vocab, length, **args)
