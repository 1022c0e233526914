"""Per-frame map files: exact round trips, clear errors, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from v2v.io.maps import (
    read_flow,
    read_instance,
    read_label,
    read_mask,
    read_rgb,
    write_flow,
    write_instance,
    write_label,
    write_mask,
    write_rgb,
)

RNG = np.random.default_rng(0)


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_label_round_trip(tmp_path: Path) -> None:
    label = RNG.integers(0, 256, (17, 23)).astype(np.uint8)
    label[0, 0], label[0, 1] = 0, 255
    path = tmp_path / "sub" / "label.png"
    write_label(path, label)
    out = read_label(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, label)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and raw.ndim == 2
    _no_temporaries(path.parent)


def test_instance_round_trip_keeps_large_ids(tmp_path: Path) -> None:
    inst = np.full((9, 11), 7, np.int32)
    inst[2:4, 2:5] = 26000
    inst[5:7, 1:3] = 33001  # > 32767: breaks if anything goes through int16
    inst[8, 10] = 65535
    inst[0, 0] = 0
    path = tmp_path / "inst.png"
    write_instance(path, inst)
    out = read_instance(path)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, inst)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16


@pytest.mark.parametrize("bad", [65536, -1])
def test_instance_out_of_range_is_rejected(tmp_path: Path, bad: int) -> None:
    inst = np.zeros((4, 4), np.int64)
    inst[1, 1] = bad
    path = tmp_path / "inst.png"
    with pytest.raises(ValueError, match="0..65535"):
        write_instance(path, inst)
    assert not path.exists()
    _no_temporaries(tmp_path)


def test_mask_round_trip_is_a_1_bit_png_read_as_0_255(tmp_path: Path) -> None:
    mask = (RNG.random((13, 16)) > 0.5)[:, ::2]  # a strided view is written as its values
    path = tmp_path / "mask.png"
    write_mask(path, mask)
    out = read_mask(path)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, mask)
    assert path.read_bytes()[24] == 1  # IHDR bit depth: bilevel
    assert set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)).tolist()) == {0, 255}


def test_8_bit_masks_written_before_stay_readable(tmp_path: Path) -> None:
    mask = RNG.random((9, 7)) > 0.5
    path = tmp_path / "old.png"
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(path), mask)


def test_rgb_round_trip_and_channel_order(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 256, (10, 12, 3)).astype(np.uint8)
    rgb[0, 0] = (255, 0, 0)  # pure red
    path = tmp_path / "frame.png"
    write_rgb(path, rgb)
    out = read_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out, rgb)
    assert tuple(cv2.imread(str(path))[0, 0]) == (0, 0, 255)  # OpenCV's BGR on disk


def test_rgb_jpeg_is_lossy_but_close(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 40
    path = tmp_path / "frame.jpg"
    write_rgb(path, rgb)
    assert np.abs(read_rgb(path).astype(int) - rgb).max() < 6


def test_flow_float32_exact_and_float16_close(tmp_path: Path) -> None:
    flow = RNG.uniform(-63.9, 63.9, (15, 21, 2)).astype(np.float32)
    write_flow(tmp_path / "f32.npy", flow, dtype=np.float32)
    out = read_flow(tmp_path / "f32.npy")
    assert out.dtype == np.float32 and out.shape == flow.shape
    np.testing.assert_array_equal(out, flow)

    write_flow(tmp_path / "f16.npy", flow, dtype=np.float16)
    assert np.load(tmp_path / "f16.npy").dtype == np.float16
    out16 = read_flow(tmp_path / "f16.npy")
    assert out16.dtype == np.float32
    assert np.abs(out16 - flow).max() < 0.05
    assert (tmp_path / "f16.npy").stat().st_size < (tmp_path / "f32.npy").stat().st_size
    _no_temporaries(tmp_path)


def test_flow_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "flow.npy"
    with pytest.raises(ValueError, match=r"\(H, W, 2\).*\(4, 5, 3\)") as info:
        write_flow(path, np.zeros((4, 5, 3), np.float32))
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="float16 or float32"):
        write_flow(path, np.zeros((4, 5, 2), np.float32), dtype=np.float64)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-finite"):
        write_flow(path, np.full((4, 5, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="do not fit float16"):
        write_flow(path, np.full((4, 5, 2), 1e6, np.float32), dtype=np.float16)
    with pytest.raises(ValueError, match=r"\.npy"):
        write_flow(tmp_path / "flow.png", np.zeros((4, 5, 2), np.float32))
    assert not path.exists()

    np.save(path, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 2\)") as info:
        read_flow(path)
    assert str(path) in str(info.value)

    path.write_bytes(b"definitely not numpy")
    with pytest.raises(ValueError, match="corrupt") as info:
        read_flow(path)
    assert str(path) in str(info.value)


Reader = Callable[[Path], np.ndarray]
READERS: list[Reader] = [read_label, read_instance, read_mask, read_rgb, read_flow]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
def test_missing_file_names_the_path(tmp_path: Path, reader: Reader) -> None:
    path = tmp_path / "nope" / ("x.npy" if reader is read_flow else "x.png")
    with pytest.raises(FileNotFoundError) as info:
        reader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("reader", [read_label, read_instance, read_mask, read_rgb], ids=lambda r: r.__name__)
@pytest.mark.parametrize("content", ["garbage", "truncated", "empty"])
def test_corrupt_png_names_the_path(tmp_path: Path, reader: Reader, content: str) -> None:
    path = tmp_path / "bad.png"
    if content == "garbage":
        path.write_bytes(b"this is not a png at all")
    elif content == "truncated":
        write_label(path, RNG.integers(0, 256, (64, 64)).astype(np.uint8))
        path.write_bytes(path.read_bytes()[:60])
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot decode this image") as info:
        reader(path)
    assert str(path) in str(info.value)
    assert "re-run the stage" in str(info.value)  # outside a project's stage folders no command is guessed


def test_a_damaged_map_names_the_command_that_rebuilds_it(tmp_path: Path) -> None:
    for folder, stage in [
        ("data/frames/v", "extract"),
        ("data/maps/segment/v/label", "segment"),
        ("data/flow/v", "flow"),
    ]:
        path = tmp_path / folder / "000001.png"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        with pytest.raises(ValueError, match=rf"000001.png: cannot decode this image.*`dvc repro {stage}`"):
            read_rgb(path)


def test_readers_reject_the_wrong_kind_of_image(tmp_path: Path) -> None:
    rgb_path = tmp_path / "rgb.png"
    write_rgb(rgb_path, np.zeros((4, 4, 3), np.uint8))
    inst_path = tmp_path / "inst.png"
    write_instance(inst_path, np.full((4, 4), 26001, np.int32))
    with pytest.raises(ValueError, match="label map") as info:
        read_label(rgb_path)
    assert str(rgb_path) in str(info.value)
    with pytest.raises(ValueError, match="label map"):
        read_label(inst_path)  # 16-bit is not a label map
    with pytest.raises(ValueError, match="instance map"):
        read_instance(rgb_path)
    with pytest.raises(ValueError, match="mask"):
        read_mask(inst_path)


@pytest.mark.parametrize(
    ("writer", "array", "message"),
    [
        (write_label, np.zeros((4, 4, 1), np.uint8), r"\(H, W\)"),
        (write_label, np.full((4, 4), 300, np.int32), "0..255"),
        (write_label, np.zeros((4, 4), np.float32), "integers"),
        (write_instance, np.zeros((4,), np.int32), r"\(H, W\)"),
        (write_instance, np.zeros((4, 4), np.float32), "integers"),
        (write_mask, np.zeros((4, 4), np.uint8), "boolean"),
        (write_mask, np.zeros((4, 4, 2), bool), r"\(H, W\)"),
        (write_rgb, np.zeros((4, 4), np.uint8), r"\(H, W, 3\)"),
        (write_rgb, np.zeros((4, 4, 4), np.uint8), r"\(H, W, 3\)"),
        (write_rgb, np.zeros((4, 4, 3), np.float32), "uint8"),
    ],
)
def test_writers_reject_wrong_shapes_and_types(
    tmp_path: Path, writer: Callable[[Path, np.ndarray], None], array: np.ndarray, message: str
) -> None:
    path = tmp_path / "out.png"
    with pytest.raises(ValueError, match=message) as info:
        writer(path, array)
    assert str(path) in str(info.value)
    assert not path.exists()


def test_lossy_suffix_is_refused_for_maps(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        write_label(tmp_path / "label.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\.png"):
        write_instance(tmp_path / "inst.jpg", np.zeros((4, 4), np.int32))


def test_overwrite_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "label.png"
    write_label(path, np.zeros((4, 4), np.uint8))
    write_label(path, np.full((4, 4), 7, np.uint8))
    np.testing.assert_array_equal(read_label(path), np.full((4, 4), 7, np.uint8))
    _no_temporaries(tmp_path)
