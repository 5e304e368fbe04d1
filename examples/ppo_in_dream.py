"""PPO (stable-baselines3) trained only inside a dream, then scored in the real game.

    python examples/ppo_in_dream.py --obs latent --timesteps 5000000
    python examples/ppo_in_dream.py --obs pixels --timesteps 100000
    python examples/ppo_in_dream.py --env Dream-CarRacing-v0 --obs latent --timesteps 3000000

``--obs latent``: the agent sees the model's features ([z, h, c] for TakeCover); in the
game the same features come from :class:`~dream_gym.envs.latent.RealLatentObservation`
(here its batched form, ``evaluate_controller``). The features are normalised with SB3's
``VecNormalize`` (running mean and variance): M's hidden state varies by about 0.15 where
z and c vary by 0.4 to 0.5. Without it PPO sat on the wall-hugging plateau of this dream
(about 210) for millions of steps and did not beat random in the game; with it the first
command reaches a dream score of 606 and 614.1 +- 400.8 in real VizDoom (random 240.6,
Welch t 8.86, 100 episodes; about 11 minutes of PPO on 2 CPU cores). The same statistics,
frozen, normalise the real game's features and are saved beside the policy.

``--obs pixels``: the agent sees the screen at 64x64, which the dream renders at that size
(``screen_size=64``), the last ``--frame-stack`` frames at once (SB3's ``VecFrameStack``:
which way the view and the fireballs move). In the game the same wrappers go on
:func:`~dream_gym.sb3.make_real_sb3_env`; it is scored twice, on the raw screen and on the
model's view of it (:class:`~dream_gym.envs.pixels.ModelView`), to show what a pixel agent
needs to transfer. ``--agent recurrent`` replaces the stack by memory: sb3-contrib's
``RecurrentPPO`` on one frame, its CNN the model's frozen encoder
(:class:`~dream_gym.sb3.ModelEncoder`). ``--agent encoder`` is ``CnnPolicy`` with that
encoder as its CNN and the latent agent's nets; with ``--frame-skip 8`` each action is held
8 steps in the dream (``DreamVectorEnv(frame_skip=8)``) and in the game
(``MaxAndSkipObservation``). From the dream's reward alone the best of these reached real
266.2 +- 71.9 through the model against random 240.6 (``--frame-skip 8 --frame-stack 2
--envs 256 --n-steps 32 --timesteps 1000000``, 75 minutes; Welch t 1.79); the NatureCNN
agent held a near-fixed action and the recurrent one stayed at a random policy's dream score
(TakeCover card). ``--teacher takecover`` first teaches the ``encoder`` agent in the dream:
the model's shipped controller, which reads the dream's latent state, labels the frames of
the agent's own play (:func:`dream_gym.distill.dagger`), then PPO trains on, its first
``--value-warmup`` steps fitting the critic alone. The pixel agent that transfers:

    python examples/ppo_in_dream.py --obs pixels --agent encoder --frame-stack 8 \
        --envs 256 --n-steps 32 --teacher takecover --value-warmup 131072 \
        --timesteps 655360 --lr 1e-4

60 minutes on 2 cores: real 751.6 +- 481.3 on the raw screen and 763.4 +- 466.3
through the model against random 240.6 (Welch t 10.2 and 10.8); taught only
(``--timesteps 0``, 8 minutes) 707.1 and 742.5; the teacher 799.7 on these seeds.

``--env Dream-CarRacing-v0``: the same on CarRacing's Box actions (steer, gas, brake), with
its own defaults (256 dreams at tau 1.0, gamma 0.99, longer rollouts: a lap is 1,000 steps).
Real episodes are seeded 10000.. as in the cards; the random policy is scored on the same
seeds. The policy is saved as safetensors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EveryNTimesteps
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecMonitor, VecNormalize

from dream_gym.checkpoint import save_json, save_tensors
from dream_gym.distill import DaggerConfig, controller_teacher, dagger
from dream_gym.evaluate import evaluate_controller, evaluate_random, welch_t
from dream_gym.sb3 import (
    ModelEncoder,
    SaveCallback,
    TqdmCallback,
    evaluate_sb3,
    make_real_sb3_env,
    make_sb3_vec_env,
)
from dream_gym.zoo import load_model

# per dream: (latent dreams, tau, gamma, latent rollout steps per dream). TakeCover: sweeping
# outlives wall-hugging only over hundreds of steps; CarRacing: a lap is 1,000 steps
DEFAULTS = {"Dream-TakeCover-v0": (1024, 1.15, 0.995, 32),
            "Dream-CarRacing-v0": (256, 1.0, 0.99, 128)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=sorted(DEFAULTS), default="Dream-TakeCover-v0")
    p.add_argument("--obs", choices=["latent", "pixels"], default="latent")
    p.add_argument("--model", default=None, help="default: the id's zoo model")
    p.add_argument("--timesteps", type=int, default=5_000_000)
    p.add_argument("--envs", type=int, default=None,
                   help="dreams (default: per env for latent, 16 for pixels)")
    p.add_argument("--temperature", type=float, default=None, help="default per env")
    p.add_argument("--frame-stack", type=int, default=4,
                   help="pixels: frames the agent sees at once (SB3's VecFrameStack; "
                        "1 with --agent recurrent: its LSTM remembers)")
    p.add_argument("--frame-skip", type=int, default=1,
                   help="pixels: each action held this many steps, in the dream "
                        "(frame_skip) and the game (MaxAndSkipObservation) alike")
    p.add_argument("--ent-coef", type=float, default=0.01, help="pixels: PPO's entropy bonus")
    p.add_argument("--lr", type=float, default=3e-4, help="pixels 'encoder': PPO's step size")
    p.add_argument("--agent", choices=["cnn", "encoder", "recurrent"], default="cnn",
                   help="pixels: 'cnn' is PPO's CnnPolicy (NatureCNN) on --frame-stack frames; "
                        "'encoder' the same CnnPolicy with the model's frozen encoder as its "
                        "CNN (dream_gym.sb3.ModelEncoder) and the latent agent's batch; "
                        "'recurrent' is sb3-contrib's RecurrentPPO, CnnLstmPolicy on one frame "
                        "with that encoder")
    p.add_argument("--gamma", type=float, default=None,
                   help="default per env, for one step; with --frame-skip k, gamma ** k")
    p.add_argument("--n-steps", type=int, default=None,
                   help="rollout steps per env (default per env; pixels 'cnn': 4096 / envs)")
    p.add_argument("--epochs", type=int, default=4, help="PPO epochs per rollout ('encoder')")
    p.add_argument("--checkpoint-every", type=int, default=250_000,
                   help="steps between saves of the policy (policy.safetensors, atomic)")
    p.add_argument("--teacher", default=None,
                   help="pixels 'encoder': a model (zoo name or folder) whose controller, "
                        "evolved in its dream, first teaches the pixel policy in the dream "
                        "(dream_gym.distill.dagger), before PPO")
    p.add_argument("--dagger-rounds", type=int, default=4)
    p.add_argument("--dagger-steps", type=int, default=256,
                   help="vector steps per DAgger round (x --envs labelled frames)")
    p.add_argument("--value-warmup", type=int, default=0,
                   help="PPO's first steps train the value net alone (the taught actor "
                        "frozen until its critic knows the dream's returns)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default runs/ppo_<obs> (TakeCover), "
                   "runs/ppo_<game>_<obs>")
    args = p.parse_args()
    latent_envs, tau, gamma, n_steps = DEFAULTS[args.env]
    model_name = args.model or gym.spec(args.env).kwargs["model"]
    model = load_model(model_name)  # once: its game names the real env, and it scores latents
    game = model.spec
    tag = "" if game.name == "TakeCover" else f"{game.name.lower()}_"
    out = Path(args.out or f"runs/ppo_{tag}{args.obs}")
    recurrent = args.obs == "pixels" and args.agent == "recurrent"
    if recurrent:
        args.frame_stack = 1  # the LSTM remembers
    envs = args.envs or (latent_envs if args.obs == "latent" else 64 if recurrent
                         else 256 if args.agent == "encoder" else 16)
    temperature = args.temperature if args.temperature is not None else tau
    if args.obs == "latent":
        args.frame_skip = 1
    gamma = args.gamma if args.gamma is not None else gamma ** args.frame_skip
    n_steps = args.n_steps or n_steps

    def stacked(v: VecEnv) -> VecEnv:  # the same wrapper on the dream and the real game
        return VecFrameStack(v, args.frame_stack) if args.frame_stack > 1 else v

    if args.obs == "latent":
        venv = VecNormalize(VecMonitor(make_sb3_vec_env(
            args.env, envs, model=model_name, obs_type="latent",
            temperature=temperature)), gamma=gamma)
        agent = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=8192, n_epochs=4,
                    learning_rate=3e-4, ent_coef=0.01, gamma=gamma, seed=args.seed,
                    policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [256, 256]}},
                    tensorboard_log=str(out), verbose=0)
    else:
        # returns scaled by VecNormalize (the images are scaled by the policy itself)
        venv = VecNormalize(VecMonitor(stacked(make_sb3_vec_env(
            args.env, envs, model=model_name, obs_type="pixels", temperature=temperature,
            screen_size=64, frame_skip=args.frame_skip))), norm_obs=False, gamma=gamma)
    if recurrent:
        from sb3_contrib import RecurrentPPO

        from dream_gym.world_models.model import HAS_BF16

        agent = RecurrentPPO(
            "CnnLstmPolicy", venv, n_steps=64, batch_size=2048, n_epochs=3, learning_rate=3e-4,
            ent_coef=args.ent_coef, gamma=gamma, seed=args.seed, tensorboard_log=str(out),
            verbose=0, policy_kwargs={
                "features_extractor_class": ModelEncoder,
                "features_extractor_kwargs": {"model": model_name, "bfloat16": HAS_BF16},
                "lstm_hidden_size": 128, "shared_lstm": True, "enable_critic_lstm": False,
                "net_arch": {"pi": [64], "vf": [256]}})
    elif args.agent == "encoder":  # the latent agent's nets and batch on the encoded frames
        from dream_gym.world_models.model import HAS_BF16

        agent = PPO("CnnPolicy", venv, n_steps=n_steps, batch_size=2048, n_epochs=args.epochs,
                    learning_rate=args.lr, ent_coef=args.ent_coef, gamma=gamma, seed=args.seed,
                    tensorboard_log=str(out), verbose=0, policy_kwargs={
                        "features_extractor_class": ModelEncoder,
                        "features_extractor_kwargs": {"model": model_name, "bfloat16": HAS_BF16,
                                                      "cache": 65536},
                        "net_arch": {"pi": [64, 64], "vf": [256, 256]}})
    elif args.obs == "pixels":
        agent = PPO("CnnPolicy", venv, n_steps=4096 // envs, batch_size=512, n_epochs=4,
                    learning_rate=2.5e-4, ent_coef=args.ent_coef, gamma=gamma, seed=args.seed,
                    tensorboard_log=str(out), verbose=0)
    norm = agent.get_vec_normalize_env()

    def save() -> None:
        # SB3 shares the CNN between policy and value nets; safetensors wants one tensor each
        tensors = {k: v.detach().clone() for k, v in agent.policy.state_dict().items()}
        if norm is not None and norm.norm_obs:  # what the real game's features are scaled with
            tensors |= {"obs_mean": torch.as_tensor(norm.obs_rms.mean, dtype=torch.float32),
                        "obs_var": torch.as_tensor(norm.obs_rms.var, dtype=torch.float32)}
        save_tensors(out / "policy.safetensors", tensors)

    if args.teacher is not None:
        if args.agent != "encoder":
            p.error("--teacher teaches the 'encoder' pixel agent (its frozen CNN's features "
                    "are stored between rounds)")
        results_dagger = dagger(agent.policy, venv, controller_teacher(args.teacher),
                                DaggerConfig(rounds=args.dagger_rounds,
                                             steps=args.dagger_steps, seed=args.seed))
        save()
    actor = [*agent.policy.mlp_extractor.policy_net.parameters(),
             *agent.policy.action_net.parameters()]
    def callbacks(steps: int, desc: str) -> list:
        return [TqdmCallback(steps, desc),
                EveryNTimesteps(args.checkpoint_every, SaveCallback(save))]

    if args.value_warmup:  # Adam skips the actor's weights while they have no gradient
        for w in actor:
            w.requires_grad_(False)
        agent.learn(args.value_warmup, callback=callbacks(args.value_warmup, "PPO critic"))
        for w in actor:
            w.requires_grad_(True)
    if args.timesteps > args.value_warmup:
        rest = args.timesteps - args.value_warmup
        agent.learn(rest, callback=callbacks(rest, "PPO in the dream"),
                    reset_num_timesteps=not args.value_warmup)
    save()

    seed, n = 10_000, args.episodes
    dream = [ep["r"] for ep in agent.ep_info_buffer or []]  # the last 100 dream episodes
    results = {"env": args.env, "model": model_name, "obs": args.obs,
               "timesteps": args.timesteps, "envs": envs, "temperature": temperature,
               "gamma": gamma, "first_seed": seed,
               "frame_stack": args.frame_stack if args.obs == "pixels" else None,
               "frame_skip": args.frame_skip, "n_steps": agent.n_steps,
               "agent": args.agent if args.obs == "pixels" else "mlp",
               "teacher": args.teacher, "value_warmup": args.value_warmup, "lr": args.lr,
               "dagger": results_dagger if args.teacher is not None else None,
               "dream_last_episodes": {"mean": float(np.mean(dream)), "n": len(dream)}}
    print(f"dream (last {len(dream)} training episodes): {np.mean(dream):.1f}")
    if args.obs == "latent":
        results["real"] = evaluate_controller(
            model, lambda f: torch.from_numpy(
                agent.predict(norm.normalize_obs(f.numpy()), deterministic=True)[0]),
            n, seed=seed)
    else:
        results["real_raw_screen"] = evaluate_sb3(
            agent, stacked(make_real_sb3_env(game.name, 64, frame_skip=args.frame_skip)), n,
            seed, desc="real, raw screen")
        results["real"] = evaluate_sb3(
            agent, stacked(make_real_sb3_env(game.name, 64, model, args.frame_skip)), n, seed,
            desc="real, model view")
    results["random"] = evaluate_random(game.name, n, seed=seed)
    results["welch_t_vs_random"] = welch_t(results["real"], results["random"])
    for k in ("real", "real_raw_screen", "random"):
        if k in results:
            r = results[k]
            print(f"{k:<16} {r['mean']:7.1f} +- {r['std']:6.1f} (stderr {r['stderr']:.1f}, "
                  f"n={r['n']})")
    print(f"Welch t (real vs random): {results['welch_t_vs_random']:.2f}")
    save_json(out / "result.json", results)
    print(f"saved {out / 'result.json'}")


if __name__ == "__main__":
    main()
