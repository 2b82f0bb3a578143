"""Command line: `c3rl train ...` and `c3rl transfer ...` (also `python -m c3rl_jax ...`)."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from c3rl_jax.causal.methods import mechanism_names
from c3rl_jax.config import SHARING_MODES, TUNABLE_DEFAULTS, TrainConfig
from c3rl_jax.errors import ConfigError
from c3rl_jax.evaluation import BEHAVIOURS
from c3rl_jax.exploration import MEAN_DRAWS, MODES
from c3rl_jax.guards import DivergenceError
from c3rl_jax.interrupts import TrainingInterrupted
from c3rl_jax.results import Results
from c3rl_jax.tasks import task_names

TUNABLE_HELP = {
    "episodes": "episodes per agent",
    "hidden": "hidden layer widths of actor and critic, comma separated",
    "actor_lr": "actor Adam learning rate",
    "critic_lr": "critic Adam learning rate",
    "gamma": "discount factor",
    "tau": "Polyak rate of the target networks",
    "batch_size": "minibatch rows per agent per update",
    "warmup_steps": "steps per agent of uniform random actions before updates start",
    "buffer_size": "replay capacity per agent, in transitions",
    "ou_theta": "OU noise mean reversion",
    "ou_sigma": "OU noise scale",
    "ou_dt": "OU noise time step",
    "explore_sigma": "coordinated exploration: std sigma_0 of the per-episode OU means",
    "explore_decay": "coordinated exploration: sigma_k = max(floor, sigma_0 * decay^k)",
    "explore_floor": "coordinated exploration: the floor of sigma_k",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c3rl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train a population of agents concurrently")
    p.add_argument(
        "--task",
        default="pendulum",
        help=f"task name: {', '.join(task_names())} (default: pendulum)",
    )
    p.add_argument(
        "--reward", default="dense", help="reward mode: dense or sparse (default: dense)"
    )
    p.add_argument(
        "--sharing",
        default="individual",
        choices=SHARING_MODES,
        help="how agents share replay data; custom needs --sharing-matrix (default: individual)",
    )
    p.add_argument(
        "--sharing-matrix",
        type=Path,
        default=None,
        help="N x N row-stochastic matrix as .npy or .csv (for --sharing custom)",
    )
    p.add_argument(
        "--agents", type=int, default=20, dest="n_agents", help="number of agents (default: 20)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same seed gives the same result (default: 0)",
    )
    p.add_argument(
        "--out", default=None, help="output directory (default runs/TASK-REWARD-SHARING-sSEED)"
    )
    p.add_argument(
        "--episodes-per-chunk",
        type=int,
        default=5,
        help="episodes per jitted chunk; results are saved after each (default: 5)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="checkpoint every this many episodes into OUT/checkpoints; 0 = never (default: 10)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run saved in DIR from its latest checkpoint; other "
        "options are taken from the checkpoint, except --episodes",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        dest="profile_dir",
        help="write a jax.profiler trace of the first 3 chunks to DIR (open with TensorBoard's "
        "profile plugin or ui.perfetto.dev)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="devices to split the agent axis over (default: all JAX sees; must divide --agents)",
    )
    p.add_argument(
        "--compile-cache",
        default="auto",
        metavar="DIR",
        help='persistent compilation cache: "auto" ($C3RL_JAX_CACHE_DIR, else ~/.cache/c3rl_jax), '
        '"off", or a directory (default: auto)',
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: call jax.distributed.initialize() first (one process per host)",
    )
    method = p.add_argument_group("method: exploration, rebuilds of P, seed sampling")
    method.add_argument(
        "--exploration",
        choices=MODES,
        default=None,
        help="action noise (default: coordinated for c3rl and sysid, none for seed_sampling, "
        "ou otherwise)",
    )
    method.add_argument(
        "--mean-draws",
        choices=MEAN_DRAWS,
        default="stratified",
        help="how coordinated OU means are drawn (default: stratified)",
    )
    method.add_argument(
        "--rebuild-every",
        type=int,
        default=5,
        help="c3rl/sysid: episodes between rebuilds of P (default: 5)",
    )
    method.add_argument(
        "--rebuild-samples",
        type=int,
        default=None,
        help="c3rl/sysid: recent transitions per agent used in a rebuild (default: the "
        "mechanism method's, 50 for agent_gp, 20 for anm_mm and sysid)",
    )
    method.add_argument(
        "--mechanism",
        choices=mechanism_names(),
        default=None,
        help="c3rl: mechanism-inference method behind each rebuild of P (default: agent_gp; "
        "anm_mm is the paper's per-sample GPPOM)",
    )
    method.add_argument(
        "--rebuild-fit-steps",
        type=int,
        default=None,
        help="c3rl: optimiser steps of the mechanism fit per rebuild (default: the method's)",
    )
    method.add_argument(
        "--clusters",
        type=int,
        default=None,
        dest="n_clusters",
        help="c3rl/sysid: Gaussian mixture components (default: chosen by BIC)",
    )
    method.add_argument(
        "--prior-scale",
        type=float,
        default=0.05,
        help="seed_sampling: weight of each agent's random prior critic, per unit of the "
        "task's value range (default: 0.05)",
    )
    method.add_argument(
        "--reward-noise",
        type=float,
        default=0.1,
        help="seed_sampling: std of the fixed per-datum reward noise, per unit of the task's "
        "per-step reward range (default: 0.1)",
    )
    tunables = p.add_argument_group("task-tuned settings (default: the task's own)")
    for name, default in TUNABLE_DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        if name == "hidden":
            kind, shown = _widths, ",".join(map(str, default))
        else:
            kind, shown = type(default), default
        tunables.add_argument(
            flag,
            type=kind,
            default=None,
            help=f"{TUNABLE_HELP[name]} (default: the task's, else {shown})",
        )
    add_transfer_parser(commands)
    return parser


def add_transfer_parser(commands) -> None:
    p = commands.add_parser(
        "transfer",
        help="place a new environment among a c3rl run's mechanisms and recommend a policy",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="directory of a c3rl run")
    p.add_argument("--task", default=None, help="the run's task (checked if given)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the new environment, e.g. --param w=0.8 (repeatable; others "
        "keep the task's default)",
    )
    p.add_argument(
        "--transitions",
        type=int,
        default=100,
        help="transitions of the new environment used to place it, drawn from one episode of "
        "each trained policy (or random-action episodes, see --behaviour) (default: 100)",
    )
    p.add_argument(
        "--behaviour",
        choices=BEHAVIOURS,
        default="policies",
        help="collect the new environment's transitions with the trained policies (their "
        "data is what the mechanisms were fitted to) or with uniform random actions "
        "(default: policies)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="also measure every trained policy's return on the new environment",
    )
    p.add_argument(
        "--warm-start",
        type=int,
        default=0,
        metavar="EPISODES",
        help="then train a new agent from the recommended policy for this many episodes",
    )
    p.add_argument(
        "--mechanism-replay",
        action="store_true",
        help="warm start: also copy the replay data of the new environment's mechanism's agents",
    )
    p.add_argument(
        "--out", default=None, help="output directory (default: RUN/transfer-NAME=VALUE-...)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_params(items: list[str]) -> dict[str, float]:
    """["w=0.8", "m=1.1"] -> {"w": 0.8, "m": 1.1} (ConfigError on a malformed item)."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name or number is None:
            raise ConfigError(f"param={item!r} is invalid: expected NAME=NUMBER, e.g. w=0.8")
        params[name] = number
    return params


def transfer_command(args: argparse.Namespace) -> None:
    from c3rl_jax.training import saved_config
    from c3rl_jax.transfer import transfer, warm_start

    params = parse_params(args.param)
    if args.task is not None:
        run_task = saved_config(args.run).task
        if args.task != run_task:
            raise ConfigError(
                f"task={args.task!r} is invalid: the run in {args.run} is {run_task!r}"
            )
    result = transfer(
        args.run,
        params,
        n_transitions=args.transitions,
        seed=args.seed,
        evaluate=args.evaluate,
        behaviour=args.behaviour,
    )
    tag = "-".join(f"{k}={v:g}" for k, v in params.items()) or "default"
    out = Path(args.out or Path(args.run) / f"transfer-{tag}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.json").write_text(json.dumps(result.to_dict(), indent=2))
    posterior = ", ".join(f"{p:.3f}" for p in result.posterior)
    print(f"P(mechanism | new env) = [{posterior}]; most likely mechanism {result.mechanism}")
    order = np.argsort(-result.predicted_returns)[:5]
    print(f"{'policy':>6} {'predicted':>10}" + (f" {'actual':>10}" if args.evaluate else ""))
    for n in order:
        row = f"{n:>6} {result.predicted_returns[n]:>10.1f}"
        if args.evaluate:
            row += f" {result.actual_returns[n]:>10.1f}"
        print(row)
    print(f"recommended policy: agent {result.recommended}; saved to {out / 'transfer.json'}")
    if args.warm_start > 0:
        results = warm_start(
            args.run,
            params,
            result,
            episodes=args.warm_start,
            mechanism_replay=args.mechanism_replay,
            seed=args.seed,
            out_dir=str(out / "warm_start"),
            progress=not args.no_progress,
        )
        print_summary(results, str(out / "warm_start"))


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated integers") from None


def _load_matrix(path: Path) -> np.ndarray:
    if not path.exists():
        raise ConfigError(f"sharing_matrix={str(path)!r} is invalid: no such file")
    if path.suffix == ".npy":
        return np.load(path)
    return np.loadtxt(path, delimiter=",", ndmin=2)


def print_summary(results: Results, out: str) -> None:
    import jax

    if jax.process_index() != 0:
        return  # one summary per multi-host run, from the process that saves the results
    s = results.summary()
    print(
        f"\n{s['agents']} agents, {s['episodes']} episodes: mean return over the last 10 "
        f"episodes {s['final_mean_return']:.1f}"
    )
    print(f"{'group':>5} {'agents':>6} {'mean':>10} {'min':>10} {'max':>10}")
    for row in results.group_summary():
        print(
            f"{row['group']:>5} {row['agents']:>6} {row['mean']:>10.1f} {row['min']:>10.1f} "
            f"{row['max']:>10.1f}"
        )
    print(
        f"compile {s['compile_time_s']:.1f} s, run {s['run_time_s']:.1f} s, "
        f"{s['agent_steps_per_s']:.0f} agent-steps/s; saved to {out}"
    )


def train_command(args: argparse.Namespace) -> None:
    from c3rl_jax.training import saved_config, train  # imports JAX: keep `--help` fast

    if args.resume is not None:
        config = saved_config(args.resume)
        config = dataclasses.replace(
            config,
            episodes=args.episodes or config.episodes,
            progress=not args.no_progress,
            devices=args.devices,
            distributed=args.distributed,
            compile_cache=args.compile_cache,
        )
        print_summary(train(config, resume=args.resume), args.resume)
        return
    out = args.out or f"runs/{args.task}-{args.reward}-{args.sharing}-s{args.seed}"
    tunables = {name: getattr(args, name) for name in TUNABLE_DEFAULTS}
    config = TrainConfig(
        task=args.task,
        reward=args.reward,
        sharing=args.sharing,
        n_agents=args.n_agents,
        seed=args.seed,
        episodes_per_chunk=args.episodes_per_chunk,
        out_dir=out,
        checkpoint_every=args.checkpoint_every,
        profile_dir=args.profile_dir,
        devices=args.devices,
        distributed=args.distributed,
        compile_cache=args.compile_cache,
        exploration=args.exploration,
        mean_draws=args.mean_draws,
        rebuild_every=args.rebuild_every,
        rebuild_samples=args.rebuild_samples,
        mechanism=args.mechanism,
        rebuild_fit_steps=args.rebuild_fit_steps,
        n_clusters=args.n_clusters,
        prior_scale=args.prior_scale,
        reward_noise=args.reward_noise,
        progress=not args.no_progress,
        **{k: v for k, v in tunables.items() if v is not None},
    )
    matrix = None if args.sharing_matrix is None else _load_matrix(args.sharing_matrix)
    print_summary(train(config, sharing_matrix=matrix), out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": train_command, "transfer": transfer_command}[args.command](args)
    except ConfigError as err:
        print(f"c3rl: error: {err}", file=sys.stderr)
        return 2
    except DivergenceError as err:
        print(f"c3rl: error: {err}", file=sys.stderr)
        return 3
    except TrainingInterrupted as err:
        print(f"c3rl: {err}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
