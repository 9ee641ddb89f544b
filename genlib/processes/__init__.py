"""Parameter-free math of the noising processes: DDPM schedules, VE/VP SDEs, flow-matching paths,
and forward simulation for the animations."""

from genlib.processes.ddpm import DDPMSchedule, ScheduleKind, make_betas
from genlib.processes.forward import (
    simulate_ddpm_chain,
    simulate_forward_sde,
    simulate_ve_ladder,
    ve_sigma_ladder,
)
from genlib.processes.paths import (
    PATHS,
    OTPath,
    PathKind,
    ProbabilityPath,
    StraightPath,
    VPPath,
    conditional_trajectories,
    make_path,
)
from genlib.processes.sde import SDE, SDES, VESDE, VPSDE, SDEKind, make_sde

__all__ = [
    "DDPMSchedule",
    "ScheduleKind",
    "make_betas",
    "SDE",
    "SDES",
    "SDEKind",
    "VESDE",
    "VPSDE",
    "make_sde",
    "PATHS",
    "OTPath",
    "PathKind",
    "ProbabilityPath",
    "StraightPath",
    "VPPath",
    "conditional_trajectories",
    "make_path",
    "simulate_ddpm_chain",
    "simulate_forward_sde",
    "simulate_ve_ladder",
    "ve_sigma_ladder",
]
