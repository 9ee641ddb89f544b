"""Parameter-free math of the noising processes: DDPM schedules, VE/VP SDEs, flow-matching paths,
and forward simulation for the animations."""

from genlib.processes.ddpm import DDPMSchedule, ScheduleKind, make_betas
from genlib.processes.forward import simulate_ddpm_chain, simulate_ve_ladder, ve_sigma_ladder
from genlib.processes.sde import SDE, SDES, SDEKind, VESDE, VPSDE, make_sde

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
    "simulate_ddpm_chain",
    "simulate_ve_ladder",
    "ve_sigma_ladder",
]
