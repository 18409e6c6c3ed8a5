"""condgen's online half: the FastAPI service that serves checkpoints through one batched inference queue.

Imports models/ only, never training/ (DESIGN.md: app -> models <- training).
"""
