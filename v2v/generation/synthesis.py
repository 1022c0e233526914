"""Generate videos frame by frame with a trained generator, in memory independent of their length.

The generator sees a rolling window of the last ``num_frames`` conditions and its own last
``num_frames - 1`` outputs; nothing else is kept, so a 10 000-frame video needs the memory of a
3-frame one. First-frame policy (as :class:`v2v.models.generator.Vid2VidGenerator`): with no
previous output the frame is hallucinated whole; until the window fills, the oldest entry repeats.
Semantic manipulation happens in the conditions (:func:`v2v.data.clips.remap_ids`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from v2v.models.generator import Vid2VidGenerator
from v2v.models.presets import ModelPreset, build_generator
from v2v.training.checkpoint import read_checkpoint


def load_generator(model_file: Path, device: torch.device) -> tuple[Vid2VidGenerator, dict[str, Any]]:
    """The generator of a training stage's ``model.pt`` (all its scales), in eval mode."""
    payload = read_checkpoint(model_file)
    config = payload["config"]
    fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config["model"].items()}
    generator = build_generator(ModelPreset(**fields), num_scales=config["scale"] + 1, seed=None)
    generator.load_state_dict(payload["modules"]["generator"])
    return generator.to(device).eval(), config


@torch.no_grad()
def generate_stream(
    generator: Vid2VidGenerator,
    conditions: Iterable[torch.Tensor],  # per frame (C, H, W) generator conditions, in order
    device: torch.device,
    first_frames: Iterable[torch.Tensor] = (),  # optional real frames (3, H, W) of the first conditions
    per_frame: bool = False,  # a per-frame model (the baseline): each frame from its own condition only
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the generator's outputs (``fake``, ``flow``, ``occlusion_mask``, ... as ``(C, H, W)``) frame by frame.

    With ``first_frames`` (K real frames), the first K conditions are their context and generation
    continues from frame K (future-frame prediction from real frames).
    """
    if per_frame:
        for condition in conditions:
            out = generator.per_frame_step(condition.to(device)[None, None])
            yield {key: value[0, 0] for key, value in out.items()}
        return
    labels: deque[torch.Tensor] = deque(maxlen=generator.num_frames)
    history: deque[torch.Tensor] = deque(maxlen=generator.num_frames - 1)
    conditions = iter(conditions)
    for frame in first_frames:
        history.append(frame.to(device))
        labels.append(next(conditions).to(device))
    for condition in conditions:
        labels.append(condition.to(device))
        window = [labels[0]] * (generator.num_frames - len(labels)) + list(labels)
        prev = None
        if history:
            recent = list(history)
            prev = torch.stack([recent[0]] * (generator.num_frames - 1 - len(recent)) + recent)[None]
        out = generator.step(torch.stack(window)[None], prev)
        history.append(out["fake"][0])
        yield {key: value[0] for key, value in out.items()}
