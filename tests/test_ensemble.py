"""CMA-ES in an ensemble of dreams: each rollout runs in one member with its own seed."""

from __future__ import annotations

import shutil

import pytest
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import load_tensors, save_tensors
from dream_gym.training.controller import (
    ControllerTrainConfig,
    dream_score,
    load_dreams,
    train_in_dream,
)
from dream_gym.zoo import load_contexts, load_model, resolve

pytestmark = pytest.mark.slow  # CMA-ES runs in the shipped dream


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """The shipped model, an exact copy, and a copy whose done head fires far more often."""
    root = tmp_path_factory.mktemp("ensemble")
    same, doomed = root / "same", root / "doomed"
    shutil.copytree(resolve("takecover"), same)
    shutil.copytree(resolve("takecover"), doomed)
    weights = load_tensors(doomed / "mdnrnn.safetensors")
    weights["extra.bias"][1] += 4.0  # done logit: deaths come much sooner in this dream
    save_tensors(doomed / "mdnrnn.safetensors", weights)
    return resolve("takecover"), same, doomed


def test_a_member_runs_its_share_of_the_dreams(members):
    home, same, doomed = members
    ctx = load_contexts(home)
    ctx = (ctx["frames"], ctx["actions"])
    models = {d: load_model(d) for d in members}
    ctrl, _ = LinearController.load(home / "controller")
    args = (ctrl, 48, 1.15, 300, 7, ctx)
    alone, _ = dream_score(models[home], *args)
    with_copy, _ = dream_score([models[home], models[same]], *args)
    assert with_copy == pytest.approx(alone, rel=1e-6)  # same dreams, dealt in two batches

    doomed_alone, _ = dream_score(models[doomed], *args)
    mixed, _ = dream_score([models[home], models[doomed]], *args)
    assert doomed_alone < 0.5 * alone, (alone, doomed_alone)
    assert doomed_alone + 5 < mixed < alone - 5, (alone, mixed, doomed_alone)


def test_cma_es_with_a_copy_of_the_model_is_the_same_run(members, tmp_path):
    home, same, _ = members
    cfg = ControllerTrainConfig(generations=2, population=6, rollouts=2, max_steps=60,
                                eval_rollouts=16, seed=3)
    cpu = torch.device("cpu")
    a = train_in_dream(home, cfg, tmp_path / "a", cpu, progress=False)
    b = train_in_dream(home, cfg, tmp_path / "b", cpu, progress=False, ensemble=[same])
    assert a["dream_score"] == pytest.approx(b["dream_score"], rel=1e-6)
    mean_a = load_tensors(tmp_path / "a" / "es.safetensors")["mean"]
    mean_b = load_tensors(tmp_path / "b" / "es.safetensors")["mean"]
    assert torch.equal(mean_a, mean_b)
    assert b["ensemble"] == [str(home), str(same)] and len(b["dream_scores"]) == 2


def test_ensemble_rejects_uneven_rollouts_and_other_games(members, tmp_path):
    home, same, _ = members
    cfg = ControllerTrainConfig(generations=1, population=4, rollouts=3, max_steps=10)
    with pytest.raises(ValueError, match="rollouts \\(3\\) must be a multiple .* \\(2\\)"):
        train_in_dream(home, cfg, tmp_path / "r", torch.device("cpu"), progress=False,
                       ensemble=[same])
    with pytest.raises(ValueError, match="is a ImageNav model .* sharing one V"):
        load_dreams(home, [resolve("imagenav")], torch.device("cpu"))


def test_min_fitness_scores_each_candidate_by_its_worst_dream(members, tmp_path):
    """Pessimistic fitness: the same first generation (same candidates, same dreams) scored
    by the member where each candidate does worst, here the doomed copy, is lower than
    scored by the mean over both members."""
    from dream_gym.checkpoint import load_json

    home, _, doomed = members
    rows = {}
    for how in ("mean", "min"):
        cfg = ControllerTrainConfig(generations=1, population=6, rollouts=4, max_steps=120,
                                    eval_rollouts=8, seed=3, ensemble_fitness=how)
        train_in_dream(home, cfg, tmp_path / how, torch.device("cpu"), progress=False,
                       ensemble=[doomed])
        rows[how] = load_json(tmp_path / how / "es.json")["history"][0]
    assert rows["min"]["dream_steps"] == rows["mean"]["dream_steps"]  # the same dreams
    assert rows["min"]["mean"] < rows["mean"]["mean"] - 5, rows
    with pytest.raises(ValueError, match="ensemble_fitness must be 'mean' or 'min'"):
        ControllerTrainConfig(ensemble_fitness="max")
