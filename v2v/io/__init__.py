"""Reading and writing videos, frames and per-frame maps; atomic output helpers."""
