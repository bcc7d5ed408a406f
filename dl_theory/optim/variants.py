"""A variant of an optimizer config: a copy with some keys changed, the original untouched."""

from __future__ import annotations

import ml_collections


def optimizer_variant(optimizer: ml_collections.ConfigDict,
                      **changes) -> ml_collections.ConfigDict:
    """A copy of `optimizer` with `changes` applied; swa={...} updates the SWA sub-config key
    by key instead of replacing it (e.g. clip_global_norm=0.0 for the unclipped control)."""
    copy = ml_collections.ConfigDict(optimizer.to_dict())
    swa = changes.pop("swa", {})
    copy.update(changes)
    copy.swa.update(swa)
    return copy
