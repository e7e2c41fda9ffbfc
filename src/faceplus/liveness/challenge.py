"""Challenges: the random action sequence a ``biz_token`` carries (the token itself: ``BizTokenRecord`` in the store).

A challenge is ``count`` distinct actions in random order (``secrets``: unpredictable to a client), with at
least one that a rigid object cannot perform (a blink or an opened mouth, :data:`~.checks.NON_RIGID`): tilting
or turning a printed photo in front of the camera changes its measured yaw and pitch, but not its eyelids or
lips. With 3 of 5 actions there are 54 such sequences, so a clip recorded in advance matches a given token with
probability 1/54 at best; a clip that does every action is refused as soon as it does one not asked for
(``unexpected_action``).
"""

from __future__ import annotations

import secrets
from itertools import permutations

from faceplus.liveness.checks import ACTIONS, NON_RIGID

#: FaceID's action liveness mode; the only one served ("still"/"flash" need FaceID's closed SDK).
LIVENESS_TYPES = ("meglive",)
DEFAULT_ACTIONS = 3


def all_challenges(count: int = DEFAULT_ACTIONS) -> list[tuple[str, ...]]:
    """Every valid sequence of ``count`` actions (distinct, at least one non-rigid), in a fixed order."""
    return [seq for seq in permutations(ACTIONS, count) if any(a in NON_RIGID for a in seq)]


def random_actions(count: int = DEFAULT_ACTIONS) -> list[str]:
    """One challenge drawn uniformly from :func:`all_challenges`."""
    if not 1 <= count <= len(ACTIONS):
        raise ValueError(f"count must be 1-{len(ACTIONS)}")
    return list(secrets.choice(all_challenges(count)))
