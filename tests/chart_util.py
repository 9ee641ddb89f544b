"""Reading the Plotly figures of an AppTest run: a trace's values, a chart by its key, and the
check of the "trained objective + constant = intractable objective" figure (issue 11) that the
score matching, NCSN and flow matching page tests share."""

from __future__ import annotations

import base64
import json

import numpy as np

__all__ = ["trace_y", "chart_spec", "check_gap_fig"]


def trace_y(trace: dict) -> list[float]:
    """A trace's ``y`` as floats (plotly writes numpy arrays as base64 ``bdata``)."""
    y = trace["y"]
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"])).tolist()
    return [float(v) for v in y]


def chart_spec(at, key: str) -> dict:
    """The plotly spec of the chart with user key ``key``."""
    for c in at.get("plotly_chart"):
        if c.proto.id.endswith(key):
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key}")


def check_gap_fig(at, page: str, intractable_prefix: str) -> None:
    """Both objectives and the shifted trained one; the shifted curve lies on the intractable one
    (the lecture's identity, up to Monte-Carlo error)."""
    data = {tr["name"]: tr for tr in chart_spec(at, f"{page}_gap_fig")["data"]}
    assert {"trained objective", "trained + constant"} <= set(data)
    (name,) = [n for n in data if n.startswith(intractable_prefix)]
    shifted, intractable = trace_y(data["trained + constant"]), trace_y(data[name])
    assert len(intractable) >= 2 and len(shifted) == len(intractable)
    scale = max(abs(v) for v in intractable) + 1.0
    assert max(abs(a - b) for a, b in zip(shifted, intractable, strict=True)) < 0.15 * scale
