"""A small causal language model, as a user writes it (pure torch).

Its output is (batch, length, vocab), so speedatlas trains it on next-token cross-entropy;
return (batch, num_classes) instead and it trains as a classifier on seeded labels.
Used by config/examples/custom-tokens.yaml:
    models:
      - name: tiny_lm
        factory: config/examples/models/tiny_lm.py:build
        args: {vocab: 8000, width: 128, layers: 2}
        input: {kind: tokens, length: 64, vocab: 8000}
"""

import torch
from torch import nn


class TinyLM(nn.Module):
    def __init__(self, vocab: int, width: int, layers: int, heads: int, max_length: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(max_length, width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        x = self.embed(tokens) + self.position(torch.arange(length, device=tokens.device))
        causal = torch.triu(torch.full((length, length), float("-inf"), device=tokens.device), diagonal=1)
        return self.head(self.encoder(x, mask=causal))


def build(num_classes: int, vocab: int = 8000, width: int = 128, layers: int = 2, heads: int = 4,
          max_length: int = 512) -> nn.Module:
    """num_classes is unused: a language model has one output per vocabulary entry."""
    return TinyLM(vocab, width, layers, heads, max_length)
