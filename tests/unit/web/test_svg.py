"""The inline SVG charts are well-formed, accessible and escape what they are given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from markupsafe import Markup

from adapters.web import _svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: Markup) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert "style" not in str(svg)  # the CSP allows no inline styles
    return root


def test_stacked_bars() -> None:
    root = parse(
        _svg.stacked_bars(
            "c1", "Lanes <&>", "desc", ["09:00", "09:05"], [("a", [1, 0]), ("b", [2, 3])]
        )
    )
    assert root.find(f"{NS}title").text == "Lanes <&>"  # type: ignore[union-attr]
    rects = root.findall(f"{NS}rect")
    assert [r.get("class") for r in rects] == ["series-a", "series-b", "series-b"]
    assert root.get("aria-labelledby") == "c1-t c1-d"


def test_stacked_bars_with_nothing_to_show() -> None:
    root = parse(_svg.stacked_bars("c", "t", "d", ["x"], [("a", [0])]))
    assert root.findall(f"{NS}rect") == []


def test_bars_label_every_category() -> None:
    root = parse(_svg.bars("c", "t", "d", ["junior", "senior", "manager"], [0, 2, 7]))
    labels = [t.text for t in root.findall(f"{NS}text")]
    assert {"junior", "senior", "manager"} <= set(labels)
    assert "10" in labels  # the axis rounds 7 up to a readable 10


def test_rate_line_draws_bands_gaps_and_points() -> None:
    root = parse(
        _svg.rate_line(
            "c",
            "t",
            "d",
            ["a", "b", "c", "d"],
            [0.1, None, 0.5, 0.6],
            warn_below=0.05,
            warn_above=0.4,
        )
    )
    assert len(root.findall(f"{NS}circle")) == 3
    assert len(root.findall(f"{NS}polyline")) == 1  # the gap splits the line
    assert len([r for r in root.findall(f"{NS}rect") if r.get("class") == "band"]) == 2
    plain = parse(_svg.rate_line("c", "t", "d", ["a", "b"], [0.1, 0.2]))
    assert "50%" in [t.text for t in plain.findall(f"{NS}text")]  # zoomed to 0..50%


def test_scatter_flags_rubber_stamps() -> None:
    root = parse(
        _svg.scatter(
            "c",
            "t",
            "d",
            [_svg.Point(2, 1.0, "Rita", True), _svg.Point(5000, 0.4, "<Sam>")],
        )
    )
    dots = root.findall(f"{NS}circle")
    assert [d.get("class") for d in dots] == ["dot flagged", "dot"]
    assert "1h" in [t.text for t in root.findall(f"{NS}text")]
    assert parse(_svg.scatter("c", "t", "d", [])) is not None


def test_durations() -> None:
    assert [_svg._duration(s) for s in (5, 600, 7200, 172800)] == ["5s", "10m", "2h", "2d"]
