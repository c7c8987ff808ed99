"""What every settings section shares: unknown keys are refused, renamed keys are read for one release."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def renamed_keys(data: Any, section: str, renames: dict[str, str]) -> Any:
    """``data`` (a section's raw keys) with old key names read as their new ones, for one more release,
    each with a FutureWarning naming the new key. The new name wins when both are given."""
    if not isinstance(data, dict) or not any(old in data for old in renames):
        return data
    data = dict(data)
    for old, new in renames.items():
        if old in data:
            warnings.warn(
                f"setting {section}.{old} is deprecated and goes away in the next release; "
                f"write {section}.{new}",
                FutureWarning,
                stacklevel=2,
            )
            value = data.pop(old)
            data.setdefault(new, value)
    return data
