"""Presets: overrides, errors naming the key, and the per-sub-network parameter report."""

import pytest

from v2v.models.presets import PRESETS, parameter_report, resolve_preset


def test_overrides_apply_and_none_keeps_the_preset_value() -> None:
    base = PRESETS["small"]
    p = resolve_preset("small", ngf=16, norm="instance", n_blocks=None, foreground_ids=[26])
    assert (p.ngf, p.norm, p.n_blocks, p.foreground_ids) == (16, "instance", base.n_blocks, (26,))
    assert resolve_preset("reference").label_channels == 36


def test_unknown_names_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        resolve_preset("huge")
    with pytest.raises(ValueError, match="ngff"):
        resolve_preset("tiny", ngff=3)


def test_parameter_report_covers_every_network() -> None:
    report = parameter_report(resolve_preset("tiny", feature_channels=3), num_scales=2)
    assert report["G"] == report["G.scale0"] + report["G.scale1"]
    assert report["G.scale0"] == sum(v for k, v in report.items() if k.startswith("G.scale0."))
    assert {"E", "D_I", "D_V.temporal0", "D_V.temporal1"} <= set(report)
    reference = parameter_report(resolve_preset("reference"))
    assert abs(reference["G"] - 411e6) / 411e6 < 0.01
