"""The state machine of a user's model and its training jobs, as one table."""

from __future__ import annotations

import pytest

from avatar.states import IN_FLIGHT, STATE_MACHINE, ModelState, Transition, can, move, transition_into


def states_leading_to(target: ModelState) -> set[ModelState]:
    return {state for step in STATE_MACHINE.values() if step.target is target for state in step.sources}


def test_model_can_only_move_forward_or_start_a_new_training() -> None:
    assert states_leading_to(ModelState.QUEUED) == {ModelState.COLLECTING, ModelState.READY, ModelState.FAILED}
    assert states_leading_to(ModelState.READY) == {ModelState.QUEUED, ModelState.TRAINING}
    assert states_leading_to(ModelState.TRAINING) == {ModelState.QUEUED}
    assert ModelState.COLLECTING not in {step.target for step in STATE_MACHINE.values()}


@pytest.mark.parametrize("outcome", [Transition.SUCCEED, Transition.FAIL])
def test_a_jobs_first_outcome_is_final(outcome: Transition) -> None:
    for finished in (ModelState.READY, ModelState.FAILED):
        assert not can(finished, outcome)
        assert not can(finished, Transition.START)
    assert all(can(state, outcome) for state in IN_FLIGHT)


def test_a_new_training_may_start_only_when_none_is_in_flight() -> None:
    assert [state for state in ModelState if can(state, Transition.QUEUE)] == [
        ModelState.COLLECTING,
        ModelState.READY,
        ModelState.FAILED,
    ]


def test_every_state_but_collecting_is_entered_by_exactly_one_transition() -> None:
    for transition, step in STATE_MACHINE.items():
        assert transition_into(step.target) is transition
        assert move(transition) is step
    with pytest.raises(ValueError, match="no transition enters"):
        transition_into(ModelState.COLLECTING)
