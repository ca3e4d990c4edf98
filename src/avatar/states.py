"""The state machine of a user's model and of its training jobs, as one table.

A training job is QUEUED when requested, TRAINING once the endpoint accepted it, then READY or FAILED, once: its first
outcome is final. The user's model (the profile) is COLLECTING until its first training and then follows its active
job through the same moves; READY and FAILED may queue a new training (a new version). The table adapters turn a
transition into a conditional write (`state IN (sources)`), so a repeated, late or concurrent event cannot move anything
backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ModelState(StrEnum):
    """Where a user's model stands; a job's state is the state it gives the model."""

    COLLECTING = "COLLECTING"
    QUEUED = "QUEUED"
    TRAINING = "TRAINING"
    READY = "READY"
    FAILED = "FAILED"


class Transition(StrEnum):
    """What moves a training job, and the user's model with it while it is their active job."""

    QUEUE = "queue"  # a training was requested: a new job, the next version
    START = "start"  # the training endpoint accepted the job
    SUCCEED = "succeed"  # the trained model is stored and recorded
    FAIL = "fail"  # the job ended without a model


@dataclass(frozen=True)
class Move:
    """The states a transition may leave from, and the state it enters."""

    sources: frozenset[ModelState]
    target: ModelState


IN_FLIGHT = frozenset({ModelState.QUEUED, ModelState.TRAINING})

STATE_MACHINE: dict[Transition, Move] = {
    Transition.QUEUE: Move(frozenset({ModelState.COLLECTING, ModelState.READY, ModelState.FAILED}), ModelState.QUEUED),
    Transition.START: Move(frozenset({ModelState.QUEUED}), ModelState.TRAINING),
    Transition.SUCCEED: Move(IN_FLIGHT, ModelState.READY),
    Transition.FAIL: Move(IN_FLIGHT, ModelState.FAILED),
}


def move(transition: Transition) -> Move:
    """The sources and target of a transition."""
    return STATE_MACHINE[transition]


def can(state: ModelState, transition: Transition) -> bool:
    """Whether `transition` may leave `state`."""
    return state in STATE_MACHINE[transition].sources


def transition_into(state: ModelState) -> Transition:
    """The transition that enters `state` (every state but COLLECTING has exactly one)."""
    for transition, step in STATE_MACHINE.items():
        if step.target is state:
            return transition
    raise ValueError(f"no transition enters {state}")
