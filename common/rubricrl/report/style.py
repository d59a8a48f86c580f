"""One palette for every rubricrl chart, so "ours" looks the same in each picture.

Our runs (the model we evaluated, or the policy we trained) are :data:`OURS` first; a starting point
(the base policy, "before") is :data:`BASE`; the papers' rows take :data:`PAPER_COLORS`, which share no
colour with ours. Red is kept for warnings (the "NOT COMPARABLE" watermark, flagged titles).
"""

from __future__ import annotations

OURS = "#dd8452"  # the first (usually only) run of ours, in every chart
OUR_COLORS = (OURS, "#da8bc3", "#e5ae38", "#7f3b08")
BASE = "#8c8c8c"  # the untrained starting point
PAPER_COLORS = ("#4c72b0", "#55a868", "#8172b2", "#937860", "#64b5cd", "#ccb974", "#2f4b7c", "#5f9e6e")
WARN = "#c44e52"
SECOND = "#4c72b0"  # a second series of ours on the same axes (e.g. a rate beside the reward)


def our_color(i: int) -> str:
    """Colour of our ``i``-th run (the same run keeps its colour in every chart of a report)."""
    return OUR_COLORS[i % len(OUR_COLORS)]


def paper_color(i: int) -> str:
    """Colour of the paper's ``i``-th row."""
    return PAPER_COLORS[i % len(PAPER_COLORS)]
