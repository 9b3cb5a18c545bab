"""The built-in transformers, bert_base and gpt2_small, in pure torch (torch >= 2.0).

Runner side: torch only. Attention is `torch.nn.functional.scaled_dot_product_attention`
(added in torch 2.0, https://pytorch.org/docs/2.0/generated/torch.nn.functional.scaled_dot_product_attention.html),
so every torch environment runs them and each device takes its own fused kernel where it has
one. We write the block out rather than use `nn.TransformerEncoderLayer`: in eval mode that
layer takes a fused "fast path" (`torch._transformer_encoder_layer_fwd`, see
torch/nn/modules/transformer.py) that `FlopCounterMode` does not see, so inference FLOPs (and
% of peak) would read near zero.

Shapes (B = batch, L = sequence length, V = vocabulary, d = width):
    bert_base:  tokens (B, L) -> logits (B, num_classes). Post-LN encoder, 12 layers, d 768,
                12 heads, FFN 3072, GELU; token + learned position + token-type embeddings;
                pooler (tanh of a d x d layer on the first token) and a linear classifier.
                Default input: L 128, V 30522 (BERT's WordPiece vocabulary).
    gpt2_small: tokens (B, L) -> logits (B, L, V). Pre-LN causal decoder, 12 layers, d 768,
                12 heads, FFN 3072, GELU (tanh); learned positions; final LayerNorm; the LM
                head shares the token embedding's weight, as GPT-2 does.
                Default input: L 256, V 50257 (GPT-2's BPE vocabulary).
Weights are random (normal, std 0.02 as both papers' code initialises them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Multi-head self-attention and a feed-forward layer, each with a residual connection."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float, causal: bool, pre_norm: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads, self.dropout, self.causal, self.pre_norm = heads, dropout, causal, pre_norm
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn)
        self.fc2 = nn.Linear(ffn, width)
        self.act = nn.GELU(approximate="tanh" if pre_norm else "none")
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal
        )
        return self.drop(self.proj(y.transpose(1, 2).reshape(batch, length, width)))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:  # GPT-2
            x = x + self.attention(self.norm1(x))
            return x + self.feed_forward(self.norm2(x))
        x = self.norm1(x + self.attention(x))  # BERT
        return self.norm2(x + self.feed_forward(x))


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class BertBase(nn.Module):
    def __init__(self, num_classes: int, vocab: int, length: int, layers: int = 12, width: int = 768,
                 heads: int = 12, ffn: int | None = None, dropout: float = 0.1, max_positions: int = 512) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max(max_positions, length), width)
        self.token_types = nn.Embedding(2, width)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(width, heads, ffn or 4 * width, dropout, causal=False, pre_norm=False) for _ in range(layers)
        )
        self.pooler = nn.Linear(width, width)
        self.classifier = nn.Linear(width, num_classes)
        self.apply(_init)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions) + self.token_types.weight[0]
        x = self.drop(self.norm(x))
        for block in self.blocks:
            x = block(x)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.drop(pooled))


class Gpt2Small(nn.Module):
    def __init__(self, vocab: int, length: int, layers: int = 12, width: int = 768, heads: int = 12,
                 ffn: int | None = None, dropout: float = 0.1, max_positions: int = 1024) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max(max_positions, length), width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(width, heads, ffn or 4 * width, dropout, causal=True, pre_norm=True) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.apply(_init)
        self.head.weight = self.tokens.weight  # tied, as in GPT-2

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.drop(self.tokens(tokens) + self.positions(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def bert_base(num_classes: int, vocab: int = 30522, length: int = 128, **args) -> nn.Module:
    return BertBase(num_classes, vocab, length, **args)


def gpt2_small(num_classes: int, vocab: int = 50257, length: int = 256, **args) -> nn.Module:
    """num_classes is unused: a language model's head has one output per vocabulary entry."""
    return Gpt2Small(vocab, length, **args)


BUILTINS = {"bert_base": bert_base, "gpt2_small": gpt2_small}
