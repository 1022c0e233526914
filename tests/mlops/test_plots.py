"""`v2v plots`' still images: one colour per stage (not dash patterns), markers on short curves."""

import json

from v2v.mlops.plots import readable


def dvc_spec(points: int, revisions: tuple[str, ...] = ("workspace",)) -> dict:
    """The shape of DVC's linear template for one plot over several files (as `dvc plots show --json` gives it)."""
    values = [
        {"step": str(s), "loss": "1.0", "rev": rev, "filename": name}
        for rev in revisions
        for name in ("train_scale0.csv", "train_scale1.csv")
        for s in range(points)
    ]
    colour = {"field": "rev", "type": "nominal"}
    return {
        "data": {"values": values},
        "encoding": {
            "x": {"field": "step"},
            "color": {"field": "rev", "scale": {"domain": list(revisions), "range": ["#945dd6"] * len(revisions)}},
            "strokeDash": {"field": "filename", "scale": {"domain": ["train_scale0.csv", "train_scale1.csv"]}},
        },
        "layer": [
            {"layer": [{"mark": "line"}, {"mark": "point"}], "encoding": {"color": colour}},
            {"mark": {"type": "line", "opacity": 0.2}, "encoding": {"color": colour}},
            {"transform": [{"pivot": "pivot_field"}], "mark": {"type": "rule"}},
        ],
    }


def test_one_revision_colours_each_stage() -> None:
    out = readable(dvc_spec(points=100))
    assert "strokeDash" not in out["encoding"]
    assert out["encoding"]["color"] == {"field": "filename", "type": "nominal", "title": "stage"}
    assert out["layer"][0]["encoding"]["color"]["field"] == "filename"
    assert out["layer"][1]["encoding"]["color"]["field"] == "filename"
    assert out["layer"][2]["encoding"]["color"] == {"value": "grey"}  # the hover rule is no series of its own
    assert out["layer"][1]["mark"] == {"type": "line", "opacity": 0.2}  # long curves: no markers
    assert "point" not in json.dumps(out["layer"][0]["layer"][0])


def test_short_curves_get_markers_and_revisions_keep_their_colours() -> None:
    short = readable(dvc_spec(points=2))
    assert short["layer"][0]["layer"][0]["mark"] == {"type": "line", "point": True}
    assert short["layer"][1]["mark"] == {"type": "line", "opacity": 0.2, "point": True}
    compared = dvc_spec(points=100, revisions=("workspace", "HEAD"))  # `dvc plots diff`: colour stays the revision's
    assert readable(compared)["encoding"] == compared["encoding"]
    original = dvc_spec(points=2)
    readable(original)
    assert original == dvc_spec(points=2)  # DVC's spec is not modified in place
