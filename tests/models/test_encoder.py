"""Feature encoder E, instance-wise average pooling, k-means and the per-class feature bank."""

import torch

from v2v.data.labels import instance_id
from v2v.models.encoder import FeatureBank, instance_average_pool, instance_features, kmeans
from v2v.models.presets import build_encoder, resolve_preset

H, W = 16, 24


def instance_map() -> torch.Tensor:
    """(2, H, W): road (stuff 7), two cars and a person in image 0; one car (same id as image 0's) in image 1."""
    inst = torch.full((2, H, W), 7, dtype=torch.int32)
    inst[0, :8, :12] = instance_id(26, 0)
    inst[0, :8, 12:] = instance_id(26, 1)
    inst[0, 10:, 4:9] = instance_id(24, 0)
    inst[1, 4:12, 6:18] = instance_id(26, 0)
    return inst


def test_instance_average_pool_gives_one_constant_vector_per_instance() -> None:
    features = torch.randn(2, 5, H, W)
    inst = instance_map()
    pooled = instance_average_pool(features, inst)
    assert pooled.shape == features.shape
    for b in range(2):
        for value in torch.unique(inst[b]).tolist():
            where = inst[b] == value
            vectors = pooled[b][:, where]  # (F, pixels)
            torch.testing.assert_close(vectors, vectors[:, :1].expand_as(vectors))
            torch.testing.assert_close(vectors[:, 0], features[b][:, where].mean(dim=1))
    # the same id in two images is two instances
    car = instance_id(26, 0)
    assert not torch.allclose(pooled[0][:, inst[0] == car][:, 0], pooled[1][:, inst[1] == car][:, 0])
    # gradients flow back to the features
    features.requires_grad_(True)
    instance_average_pool(features, inst).sum().backward()
    assert features.grad is not None


def test_encoder_output_is_instance_constant() -> None:
    encoder = build_encoder(resolve_preset("tiny", feature_channels=3))
    inst = instance_map().unsqueeze(0)  # (B=1, T=2, H, W)
    feats = encoder(torch.rand(1, 2, 3, H, W) * 2 - 1, inst)
    assert feats.shape == (1, 2, 3, H, W)
    assert feats.abs().max() <= 1
    for t in range(2):
        for value in torch.unique(inst[0, t]).tolist():
            vectors = feats[0, t][:, inst[0, t] == value]
            torch.testing.assert_close(vectors, vectors[:, :1].expand_as(vectors))


def test_kmeans_finds_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    true = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    points = torch.cat([c + 0.1 * torch.randn(30, 2, generator=gen) for c in true])
    centres = kmeans(points, 3, seed=0)
    assert centres.shape == (3, 2)
    dist = torch.cdist(true, centres).min(dim=1).values
    assert torch.all(dist < 0.1)
    assert torch.equal(centres, kmeans(points, 3, seed=0))
    assert kmeans(points[:2], 5).shape[0] == 2  # k is clipped to the distinct points


def test_feature_bank_samples_class_centres_per_instance() -> None:
    inst = instance_map()
    pooled = instance_average_pool(torch.randn(2, 4, H, W), inst)
    samples = instance_features(pooled, inst)
    assert sorted({c for c, _ in samples}) == [7, 24, 26]
    assert len(samples) == 6  # road in both images, three cars, one person
    bank = FeatureBank.fit(samples, num_clusters=2, seed=0)
    assert bank.centres[26].shape == (2, 4) and bank.centres[24].shape == (1, 4)
    restored = FeatureBank.from_state_dict(bank.state_dict())
    assert all(torch.equal(restored.centres[k], v) for k, v in bank.centres.items())

    clip = inst.unsqueeze(0)  # (B=1, T=2, H, W): an instance keeps its centre across frames
    clip[0, :, 0, 0] = 11  # a class the bank has never seen: zeros
    feats = bank.sample(clip, generator=torch.Generator().manual_seed(0))
    assert feats.shape == (1, 2, 4, H, W)
    assert torch.all(feats[0, :, :, 0, 0] == 0)
    for value in torch.unique(clip).tolist():
        if value == 11:
            continue
        vectors = feats[0].permute(1, 0, 2, 3)[:, clip[0] == value]  # (F, pixels over both frames)
        torch.testing.assert_close(vectors, vectors[:, :1].expand_as(vectors))
        class_id = value // 1000 if value >= 1000 else value
        assert torch.cdist(vectors[:, 0][None], bank.centres[class_id]).min() < 1e-6
    again = bank.sample(clip, generator=torch.Generator().manual_seed(0))
    assert torch.equal(feats, again)


def test_feature_bank_paint_is_a_function_of_seed_and_instance() -> None:
    """Streaming paint: one frame at a time, an instance's centre depends on (seed, its id) only."""
    car, person, road = instance_id(26, 0), instance_id(24, 0), 7
    centres = {26: torch.arange(40.0).view(10, 4), 24: torch.arange(40.0).view(10, 4) + 100, 7: -torch.ones(10, 4)}
    bank = FeatureBank(centres)
    frame = torch.full((H, W), road)
    frame[:8, :12] = car
    other = frame.clone()
    other[10:, 4:9] = person  # a new instance appears: the car must keep its centre
    a, b = bank.paint(frame, seed=3), bank.paint(other, seed=3)
    assert a.shape == (4, H, W)
    torch.testing.assert_close(a[:, 0, 0], bank.pick(26, car, 3))
    assert torch.equal(a[:, frame == car], b[:, other == car])
    assert torch.equal(a, bank.paint(frame, seed=3))  # same seed, same features
    # across seeds the car takes different centres (10 to choose from)
    picks = {tuple(bank.paint(frame, seed=s)[:, 0, 0].tolist()) for s in range(8)}
    assert len(picks) > 2
    # a (T, H, W) clip paints like its frames one by one
    clip = torch.stack([frame, other])
    assert torch.equal(bank.paint(clip, seed=5), torch.stack([bank.paint(frame, 5), bank.paint(other, 5)]))
    # manipulation: remapped classes take the target class's centres; unknown classes stay zero
    remapped = bank.paint(frame, seed=3, class_map={26: 24})
    assert torch.equal(remapped[:, 0, 0], bank.pick(24, car, 3))
    assert torch.all(bank.paint(torch.full((H, W), 11), seed=0) == 0)
