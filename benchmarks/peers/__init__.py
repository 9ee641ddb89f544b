"""Textbook re-implementations of peer projects' published default configurations, for
``benchmarks/bench_peers.py`` (our own code, written from the papers and the peers' documented
settings; nothing is copied). Each peer is a ``Peer``: ``step()`` does one optimisation step,
``sample(n, generator)`` draws ``(n, 2)`` points, ``log_prob`` exists where the model has an exact
density."""

from __future__ import annotations

from benchmarks.peers.base import Peer
from benchmarks.peers.cfm import TorchCFMTutorial
from benchmarks.peers.tiny_ddpm import TinyDiffusionDDPM

__all__ = ["Peer", "TinyDiffusionDDPM", "TorchCFMTutorial", "PEERS"]

#: peer name -> (its constructor, the GenLab family it is compared with)
PEERS = {
    "tiny-diffusion DDPM": (TinyDiffusionDDPM, "ddpm"),
    "torchcfm CFM": (TorchCFMTutorial, "flow_matching"),
}
