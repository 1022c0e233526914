"""The feature-embedding encoder E for multimodal synthesis, instance-wise pooling and the per-class feature bank.

Training: ``E(real frame)`` gives a low-dimensional feature map, averaged inside every instance
(:func:`instance_average_pool`), concatenated to the generator's label input. Inference: the
:class:`FeatureBank` holds, per class, k-means centres of the training instances' features; a
feature map is painted by choosing one centre per instance (:meth:`FeatureBank.sample`), so the
same labels give different appearances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from v2v.data.labels import INSTANCE_DIVISOR
from v2v.models.layers import (
    Norm,
    assert_shape,
    conv_block,
    init_weights,
    output_conv,
    up_block,
)


def instance_average_pool(features: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's feature by the mean feature of its instance.

    Args:
        features: ``(N, F, H, W)``.
        instance: ``(N, H, W)`` or ``(N, 1, H, W)`` integer instance ids (Cityscapes encoding).
    Returns ``(N, F, H, W)``, constant inside each (image, instance) pair.
    """
    n, f, h, w = features.shape
    if instance.ndim == 4:
        instance = instance[:, 0]
    assert_shape(instance, [n, h, w], "instance")
    key = instance.long().reshape(n, -1)
    key = key + torch.arange(n, device=key.device).unsqueeze(1) * (int(key.max().item()) + 1)
    _, inverse = torch.unique(key.reshape(-1), return_inverse=True)
    groups = int(inverse.max().item()) + 1
    flat = features.permute(0, 2, 3, 1).reshape(-1, f)
    sums = flat.new_zeros(groups, f).index_add_(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=groups).to(flat.dtype).unsqueeze(1)
    means = sums / counts
    return means[inverse].reshape(n, h, w, f).permute(0, 3, 1, 2)


def instance_features(pooled: torch.Tensor, instance: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """``(class_id, feature (F,))`` of every instance of a pooled feature map (for the feature bank)."""
    if instance.ndim == 4:
        instance = instance[:, 0]
    out = []
    for i in range(pooled.shape[0]):
        for value in torch.unique(instance[i]).tolist():
            ys, xs = torch.nonzero(instance[i] == value, as_tuple=True)
            class_id = value // INSTANCE_DIVISOR if value >= INSTANCE_DIVISOR else value
            out.append((int(class_id), pooled[i, :, ys[0], xs[0]].detach()))
    return out


class FeatureEncoder(nn.Module):
    """Encoder-decoder E: image → ``feature_channels`` map (tanh), then instance-wise average pooling."""

    def __init__(
        self,
        *,
        image_channels: int = 3,  # input image channels
        feature_channels: int = 3,  # output feature channels (pix2pixHD/vid2vid: 3)
        ngf: int = 16,  # stem channels; doubled at each downsampling
        n_downsample: int = 4,  # downsamplings (and as many upsamplings)
        norm: Norm = "instance",  # batch | instance
    ) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.feature_channels = feature_channels
        self.size_multiple = 2**n_downsample
        layers: list[nn.Module] = [conv_block(image_channels, ngf, kernel_size=7, norm=norm, reflect=True)]
        for i in range(n_downsample):
            layers.append(conv_block(ngf * 2**i, ngf * 2 ** (i + 1), kernel_size=3, stride=2, norm=norm))
        for i in range(n_downsample, 0, -1):
            layers.append(up_block(ngf * 2**i, ngf * 2 ** (i - 1), norm=norm))
        layers += [output_conv(ngf, feature_channels), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(
        self,
        images: torch.Tensor,  # (B, T, image_channels, H, W) in [-1, 1]
        instance: torch.Tensor,  # (B, T, H, W) integer instance ids
    ) -> torch.Tensor:
        """``(B, T, feature_channels, H, W)`` instance-averaged features."""
        b, t, c, h, w = images.shape
        assert_shape(images, [b, t, self.image_channels, h, w], "images")
        assert_shape(instance, [b, t, h, w], "instance")
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"frame size {w}x{h} must be a multiple of {self.size_multiple} for the encoder")
        features = self.net(images.reshape(b * t, c, h, w))
        pooled = instance_average_pool(features, instance.reshape(b * t, h, w))
        return pooled.reshape(b, t, self.feature_channels, h, w)


def kmeans(
    points: torch.Tensor,  # (P, F)
    num_clusters: int,  # k (clipped to the number of distinct points)
    iterations: int = 50,  # Lloyd iterations at most
    seed: int = 0,  # seeds the k-means++ initialisation
) -> torch.Tensor:
    """Cluster centres ``(k, F)`` by k-means++ initialisation and Lloyd's iterations."""
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"kmeans expects a non-empty (P, F) tensor, got {tuple(points.shape)}")
    points = points.float()
    k = min(num_clusters, int(torch.unique(points, dim=0).shape[0]))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    first = int(torch.randint(points.shape[0], (1,), generator=gen).item())
    centres = points[first : first + 1]
    while centres.shape[0] < k:
        d2 = torch.cdist(points, centres).min(dim=1).values ** 2
        pick = int(torch.multinomial(d2.cpu() / d2.sum().cpu(), 1, generator=gen).item())
        centres = torch.cat([centres, points[pick : pick + 1]])
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        new = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
        if torch.allclose(new, centres):
            break
        centres = new
    return centres


class FeatureBank:
    """Per-class k-means centres of instance features, sampled to paint a feature map at inference."""

    def __init__(self, centres: Mapping[int, torch.Tensor]) -> None:
        if not centres:
            raise ValueError("a feature bank needs centres for at least one class")
        dims = {c.shape[1] for c in centres.values()}
        if len(dims) != 1:
            raise ValueError(f"feature bank centres differ in feature size: {sorted(dims)}")
        self.centres = {int(k): v.float().cpu() for k, v in centres.items()}
        self.feature_channels = dims.pop()

    @classmethod
    def fit(
        cls,
        samples: Iterable[tuple[int, torch.Tensor]],  # (class_id, feature (F,)) per training instance
        num_clusters: int = 10,  # centres per class (fewer when a class has fewer distinct instances)
        seed: int = 0,  # k-means seed
    ) -> FeatureBank:
        by_class: dict[int, list[torch.Tensor]] = {}
        for class_id, feature in samples:
            by_class.setdefault(int(class_id), []).append(feature.detach().float().cpu())
        return cls({c: kmeans(torch.stack(v), num_clusters, seed=seed) for c, v in sorted(by_class.items())})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (``torch.save`` it; load with ``weights_only=True``)."""
        return {str(k): v for k, v in self.centres.items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> FeatureBank:
        return cls({int(k): v for k, v in state.items()})

    def pick(self, class_id: int, instance_value: int, seed: int) -> torch.Tensor | None:
        """The centre that ``seed`` gives the instance ``instance_value`` of class ``class_id`` (None: no centres).

        The choice depends only on ``(seed, instance_value)``, never on which other instances exist or in
        which order they appear: a tracked instance keeps its appearance in every frame of a stream.
        """
        centres = self.centres.get(int(class_id))
        if centres is None:
            return None
        mixed = (int(seed) * 0x9E3779B97F4A7C15 + int(instance_value) * 0xBF58476D1CE4E5B9) % (2**63 - 1)
        gen = torch.Generator(device="cpu").manual_seed(mixed)
        return centres[int(torch.randint(centres.shape[0], (1,), generator=gen).item())]

    def paint(
        self,
        instance: torch.Tensor,  # (..., H, W) integer instance ids (Cityscapes encoding), e.g. one frame (H, W)
        seed: int,  # which appearance: the same seed paints the same instance the same way
        class_map: Mapping[int, int] | None = None,  # class remaps applied before the lookup (manipulation)
    ) -> torch.Tensor:
        """``(..., F, H, W)`` feature map: every instance gets the centre :meth:`pick` chooses for it; classes
        without centres get zeros. Streams frame by frame: each call is independent of the others."""
        *lead, h, w = instance.shape
        out = torch.zeros(*lead, self.feature_channels, h, w, device=instance.device)
        for value in torch.unique(instance).tolist():
            class_id = value // INSTANCE_DIVISOR if value >= INSTANCE_DIVISOR else value
            centre = self.pick((class_map or {}).get(class_id, class_id), value, seed)
            if centre is not None:
                where = (instance == value).unsqueeze(-3)  # (..., 1, H, W)
                out = torch.where(where, centre.to(out.device).view(-1, 1, 1), out)
        return out

    def sample(
        self,
        instance: torch.Tensor,  # (B, T, H, W) integer instance ids
        generator: torch.Generator | None = None,  # seeds the choice of centres
    ) -> torch.Tensor:
        """``(B, T, F, H, W)`` feature map: one random centre of its class per instance (the same
        centre for an instance in every frame of a clip); classes without centres get zeros."""
        b, t, h, w = instance.shape
        out = torch.zeros(b, t, self.feature_channels, h, w, device=instance.device)
        for i in range(b):
            for value in torch.unique(instance[i]).tolist():
                class_id = value // INSTANCE_DIVISOR if value >= INSTANCE_DIVISOR else value
                centres = self.centres.get(int(class_id))
                if centres is None:
                    continue
                pick = int(torch.randint(centres.shape[0], (1,), generator=generator).item())
                where = (instance[i] == value).unsqueeze(1)  # (T, 1, H, W)
                vec = centres[pick].to(out.device).view(1, -1, 1, 1)
                out[i] = torch.where(where, vec, out[i])
        return out
