"""Pictures for people: contact sheets of frames."""

from __future__ import annotations

import cv2
import numpy as np


def contact_sheet(rows: list[list[np.ndarray]], tile_width: int = 256, gap: int = 2) -> np.ndarray:
    """Grid of RGB uint8 images (one list per row), each resized to ``tile_width`` wide; white gaps."""
    if not rows or not any(rows):
        raise ValueError("contact_sheet needs at least one image")
    first = next(img for row in rows for img in row)
    tile_h = max(1, round(first.shape[0] * tile_width / first.shape[1]))
    cols = max(len(row) for row in rows)
    sheet = np.full((len(rows) * (tile_h + gap) - gap, cols * (tile_width + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            tile = cv2.resize(img, (tile_width, tile_h), interpolation=cv2.INTER_AREA)
            y, x = r * (tile_h + gap), c * (tile_width + gap)
            sheet[y : y + tile_h, x : x + tile_width] = tile
    return sheet


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread over ``range(count)`` (all of them when ``count <= wanted``)."""
    if count <= wanted:
        return list(range(count))
    return [round(i * (count - 1) / (wanted - 1)) for i in range(wanted)] if wanted > 1 else [0]
