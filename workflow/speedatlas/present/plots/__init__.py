"""Plots, one module per figure, sharing one style and one saver (style.py)."""
