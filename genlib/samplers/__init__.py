"""Samplers that step with FUNCTIONS (score_fn, eps_fn, velocity_fn), never model classes, so each
is testable with an analytic score.

One star-import line per sampler module (each module defines ``__all__``), so parallel additions
merge trivially; ``__all__`` below collects whatever they export.
"""

from genlib.samplers.ancestral import *  # noqa: F403
from genlib.samplers.ddim import *  # noqa: F403
from genlib.samplers.dpm_solver import *  # noqa: F403
from genlib.samplers.langevin import *  # noqa: F403
from genlib.samplers.mala import *  # noqa: F403
from genlib.samplers.ode import *  # noqa: F403
from genlib.samplers.sde import *  # noqa: F403

__all__ = [_n for _n in dir() if not _n.startswith("_")]
