"""The progressive schedule in one place: clip length over epochs, learning rate over epochs.

Temporal progression (vid2vid): training starts on short clips and the clip length doubles every
``double_every`` epochs up to ``max_frames``. Learning rate (the reference's): constant for
``epochs - decay_epochs`` epochs, then linear decay to zero over the last ``decay_epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipSchedule:
    start_frames: int  # frames per training clip in the first epoch
    double_every: int  # epochs between doublings (0: never grow)
    max_frames: int  # cap

    def __post_init__(self) -> None:
        if self.start_frames < 1 or self.max_frames < self.start_frames or self.double_every < 0:
            raise ValueError(f"invalid clip schedule {self}")

    def frames_at(self, epoch: int) -> int:
        """Clip length used in ``epoch`` (0-based)."""
        if self.double_every == 0:
            return self.start_frames
        return min(self.max_frames, self.start_frames * 2 ** (epoch // self.double_every))


def lr_at(base_lr: float, epoch: int, epochs: int, decay_epochs: int) -> float:
    """Learning rate in ``epoch`` (0-based): constant, then linear to zero over the last ``decay_epochs``."""
    if not 0 <= decay_epochs <= epochs:
        raise ValueError(f"decay_epochs must be in [0, epochs={epochs}], got {decay_epochs}")
    start_decay = epochs - decay_epochs
    if epoch < start_decay:
        return base_lr
    return base_lr * max(0.0, 1.0 - (epoch - start_decay + 1) / (decay_epochs + 1))
