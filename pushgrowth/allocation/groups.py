"""Holdout / BAU / bandit by a stable hash of (user, campaign, salt), with the campaign's traffic shares.

The hash gives each (user, campaign) a fixed point `u` in [0, 1): holdout is `u < holdout`, BAU the next `bau`,
bandit the rest. Growing the bandit share from a 10% pilot to 100% moves BAU users into the bandit without
touching the holdout or anyone already in the bandit, so results stay comparable across the rollout.
"""

from __future__ import annotations

import numpy as np

from pushgrowth.hashing import unit_hash

def assign_groups(user_ids: np.ndarray, campaign_id: str, holdout: float, bau: float,
                  salt: str = "pushgrowth") -> np.ndarray:
    """'holdout', 'bau' or 'bandit' for each user of one campaign."""
    if not (0 <= holdout <= 1 and 0 <= bau <= 1 and holdout + bau <= 1 + 1e-9):
        raise ValueError(f"{campaign_id}: shares holdout={holdout}, bau={bau} do not fit in [0, 1]")
    u = unit_hash(user_ids, campaign_id, salt)
    return np.where(u < holdout, "holdout", np.where(u < holdout + bau, "bau", "bandit"))


__all__ = ["assign_groups", "unit_hash"]
