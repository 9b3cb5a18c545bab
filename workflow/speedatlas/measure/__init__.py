"""Measure one cell, inside any torch environment (torch >= 2.0).

This side imports only the standard library, torch, torchvision, numpy and pyarrow (import-linter checks it)."""
