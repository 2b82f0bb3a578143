"""Command line: `c3rl train`, `c3rl eval`, `c3rl transfer` (also `python -m c3rl_jax ...`).

Building the parser imports no JAX, so `c3rl --help` is fast; each command imports what it
needs when it runs. Names from a registry (tasks, learners, sharing, mechanisms) are checked
by `TrainConfig.validate`, which lists the allowed ones.
"""

import argparse
import dataclasses
import json
import sys
import tomllib
import typing
import warnings
from pathlib import Path

import numpy as np

from c3rl_jax.config import RESUMABLE_CHANGES, TUNABLE_DEFAULTS, TrainConfig
from c3rl_jax.errors import ConfigError, DivergenceError
from c3rl_jax.runtime.interrupts import TrainingInterrupted
from c3rl_jax.runtime.metrics import effective_sources
from c3rl_jax.runtime.results import Results

GROUPS = {
    "run": "run",
    "method": "method: exploration, rebuilds of P, seed sampling",
    "learner": "learner",
    "tuned": "task-tuned settings (default: the task's own)",
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to find help, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _value_type(annotation):
    """The argparse type of a TrainConfig field's annotation (X | None -> X)."""
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    return _widths if typing.get_origin(kind) is tuple else kind


def _default_text(f: dataclasses.Field) -> str:
    if f.metadata["group"] == "tuned":
        default = TUNABLE_DEFAULTS[f.name]
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        return f"the task's, else {shown}"
    return "None" if f.default is None else str(f.default)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, generated from the field (type, help, default);
    options not given are absent from the parsed namespace (defaults: the config file's,
    else TrainConfig's)."""
    groups = {name: p.add_argument_group(title) for name, title in GROUPS.items()}
    for f in dataclasses.fields(TrainConfig):
        group = groups[f.metadata["group"]]
        flags = f.metadata["flags"] or ("--" + f.name.replace("_", "-"),)
        common = {"dest": f.name, "default": argparse.SUPPRESS}
        if f.type is bool:  # a switch that flips the default
            flags = [("--no-" if f.default else "--") + f.name.replace("_", "-")]
            verb = "turn off: " if f.default else ""
            group.add_argument(
                *flags,
                action="store_const",
                const=not f.default,
                help=verb + f.metadata["help"],
                **common,
            )
            continue
        help_text = f.metadata["help"]
        if "(default:" not in help_text:
            help_text += f" (default: {_default_text(f)})"
        group.add_argument(*flags, type=_value_type(f.type), help=help_text, **common)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="c3rl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train a population of agents concurrently")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="settings from a TOML or JSON file of TrainConfig fields; options given on the "
        "command line override it",
    )
    p.add_argument(
        "--sharing-matrix",
        type=Path,
        default=None,
        help="N x N row-stochastic matrix as .npy or .csv (for --sharing custom)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run saved in DIR from its latest checkpoint with its saved settings; "
        f"only these may be given to change them: {', '.join(RESUMABLE_CHANGES)}",
    )
    p.add_argument(
        "--plot", action="store_true", help="then write the run's PNGs, as `c3rl plot OUT` does"
    )
    add_config_arguments(p)
    add_eval_parser(commands)
    add_plot_parser(commands)
    add_render_parser(commands)
    add_transfer_parser(commands)
    return parser


def add_params_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a parameter of {what}, e.g. --param w=0.8 (repeatable; others keep the task's "
        "default)",
    )


def add_eval_parser(commands) -> None:
    p = commands.add_parser(
        "eval", help="greedy returns of a run's trained policies, per agent and per group"
    )
    p.add_argument("run", metavar="RUN", help="directory of a run (with checkpoints)")
    p.add_argument(
        "--episodes", type=int, default=10, help="episodes per agent, averaged (default: 10)"
    )
    add_params_argument(
        p, "one new environment every policy is run on (default: each agent's own environment)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' resets (default: 0)")
    p.add_argument("--out", default=None, help="JSON file (default: RUN/eval[-NAME=VALUE...].json)")


def add_plot_parser(commands) -> None:
    p = commands.add_parser(
        "plot", help="PNGs of runs: learning curves per group, P at each rebuild, ARI and K"
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders (several: seeds of one run; a multi-seed run's folder: its replicas)",
    )
    p.add_argument("--out", default=None, help="folder of the PNGs (default: the first RUN)")
    p.add_argument("--threshold", type=float, default=None, help="draw a line at this return")


def run_folders(paths: list[str]) -> list[str]:
    """Run folders, a multi-seed run's folder (with replicas.json) standing for its replicas'."""
    folders = []
    for path in paths:
        record = Path(path) / "replicas.json"
        if record.is_file():
            folders += [str(Path(path) / f) for f in json.loads(record.read_text())["replicas"]]
        else:
            folders.append(path)
    return folders


def plot_command(args: argparse.Namespace) -> None:
    from c3rl_jax.analysis.plotting import plot_runs

    out = args.out if args.out is not None else args.runs[0]
    for path in plot_runs(run_folders(args.runs), out, args.threshold):
        print(f"wrote {path}")


def add_render_parser(commands) -> None:
    p = commands.add_parser(
        "render",
        help="a GIF of one agent's greedy episode (pendulum, cart-pole; a PNG plot for ar)",
    )
    p.add_argument("run", metavar="RUN", help="directory of a run (with checkpoints)")
    p.add_argument("--agent", type=int, default=0, help="which agent (default: 0)")
    p.add_argument(
        "--out",
        default=None,
        help="file: .gif, or .mp4 where ffmpeg is installed; .png for ar "
        "(default: RUN/render-agentN.gif or .png)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the episode's reset (default: 0)")


def render_command(args: argparse.Namespace) -> None:
    from c3rl_jax.analysis.policy import load_policy
    from c3rl_jax.analysis.render import render

    path = render(load_policy(args.run), args.agent, args.out, args.seed, run_dir=args.run)
    print(f"wrote {path}")


def params_tag(params: dict[str, float]) -> str:
    """{"w": 0.8} -> "w=0.8": a file-name tag of a set of environment parameters."""
    return "-".join(f"{k}={v:g}" for k, v in params.items())


def eval_command(args: argparse.Namespace) -> None:
    from c3rl_jax.analysis.policy import load_policy

    params = parse_params(args.param)
    result = load_policy(args.run).evaluate(args.episodes, args.seed, params)
    tag = params_tag(params)
    out = Path(args.out or Path(args.run) / ("eval" + (f"-{tag}" if tag else "") + ".json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"run": str(args.run), **result}, indent=2))
    where = f"on the environment {tag}" if tag else "each on its own environment"
    print(f"greedy return over {args.episodes} episodes, {where}: mean {result['mean']:.1f}")
    print_groups(result["groups"])
    print(f"saved to {out}")


def add_transfer_parser(commands) -> None:
    p = commands.add_parser(
        "transfer",
        help="place a new environment among a c3rl run's mechanisms and recommend a policy",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="directory of a c3rl run")
    p.add_argument("--task", default=None, help="the run's task (checked if given)")
    add_params_argument(p, "the new environment")
    p.add_argument(
        "--transitions",
        type=int,
        default=100,
        help="transitions of the new environment used to place it, drawn from one episode of "
        "each trained policy (or random-action episodes, see --behaviour) (default: 100)",
    )
    p.add_argument(
        "--behaviour",
        default="policies",
        help="who collects the new environment's transitions: policies (the trained ones, "
        "whose data the mechanisms were fitted to) or random (uniform random actions) "
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
    from c3rl_jax.analysis.transfer import transfer, warm_start
    from c3rl_jax.training import saved_config

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
    tag = params_tag(params) or "default"
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
    try:
        if path.suffix == ".npy":
            return np.load(path)
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, OSError, EOFError) as err:
        what = "an N x N matrix of numbers as .npy or comma-separated .csv"
        raise ConfigError(f"sharing_matrix={str(path)!r} is invalid: {what} ({err})") from None


def print_summary(results: Results, out: str) -> None:
    import jax

    if jax.process_index() != 0:
        return  # one summary per multi-host run, from the process that saves the results
    s = results.summary()
    print(
        f"\n{s['agents']} agents, {s['episodes']} episodes: mean return over the last "
        f"{min(10, s['episodes'])} episodes {s['final_mean_return']:.1f}"
    )
    print_groups(results.group_summary())
    print_agents(results)
    print(
        f"compile {s['compile_time_s']:.1f} s, run {s['run_time_s']:.1f} s, "
        f"{s['agent_steps_per_s']:.0f} agent-steps/s; saved to {out}"
    )


def print_replicas(replicas: list[Results], out: str) -> None:
    """A multi-seed run: per replica (seed) its final mean return and its last rebuild's
    clusters and ARI, then the program's timings."""
    import jax

    if jax.process_index() != 0:
        return
    first = replicas[0].summary()
    print(
        f"\n{len(replicas)} replicas of {first['agents']} agents, {first['episodes']} episodes; "
        f"mean return over the last {min(10, first['episodes'])} episodes:"
    )
    print(f"{'seed':>5} {'return':>10} {'clusters':>8} {'ARI':>5}  folder")
    for results in replicas:
        fitted = [r for r in results.extra.get("rebuilds", []) if "labels" in r]
        last = fitted[-1] if fitted else None
        clusters, ari = (last["n_clusters"], f"{last['ari']:.2f}") if last else ("", "")
        print(
            f"{results.config['seed']:>5} {results.summary()['final_mean_return']:>10.1f} "
            f"{clusters:>8} {ari:>5}  {results.config['out_dir']}"
        )
    returns = [r.summary()["final_mean_return"] for r in replicas]
    steps = sum(r.returns.size for r in replicas) * replicas[0].episode_length
    print(
        f"mean over replicas {np.mean(returns):.1f} (std {np.std(returns, ddof=1):.1f}); "
        f"compile {first['compile_time_s']:.1f} s, run {first['run_time_s']:.1f} s, "
        f"{steps / first['run_time_s']:.0f} agent-steps/s; saved to {out}"
    )


def print_agents(results: Results) -> None:
    """For a run that rebuilt P: each agent's true group, its cluster at the last rebuild, and
    where the last P draws its replay data from."""
    fitted = [r for r in results.extra.get("rebuilds", []) if "labels" in r]
    if not fitted:
        return
    last, sharing, groups = fitted[-1], results.sharing_matrices[-1], results.groups
    print(
        f"\nlast rebuild (episode {last['episode']}): {last['n_clusters']} clusters, ARI "
        f"{last.get('ari', float('nan')):.2f} against the true groups; replay data per agent:"
    )
    print(f"{'agent':>5} {'group':>5} {'cluster':>7} {'from own group':>14} {'sources':>7}")
    for n, (group, cluster) in enumerate(zip(groups, last["labels"], strict=True)):
        own = sharing[n, groups == group].sum()
        sources = effective_sources(sharing[n : n + 1])
        print(f"{n:>5} {group:>5} {cluster:>7} {own:>13.0%} {sources:>7.1f}")
    print("(from own group: the share of its minibatch rows drawn from agents of its true")
    print(" group; sources: the effective number of agents they come from, 1 / sum_m P[n, m]^2)")


def print_groups(rows: list[dict]) -> None:
    """A table of `results.group_summary` rows."""
    print(f"{'group':>5} {'agents':>6} {'mean':>10} {'min':>10} {'max':>10}")
    for row in rows:
        print(
            f"{row['group']:>5} {row['agents']:>6} {row['mean']:>10.1f} {row['min']:>10.1f} "
            f"{row['max']:>10.1f}"
        )


def read_config_file(path: Path) -> dict:
    """TrainConfig fields from a .toml or .json file (ConfigError if unreadable)."""
    if not path.is_file():
        raise ConfigError(f"config={str(path)!r} is invalid: no such file")
    try:
        if path.suffix == ".toml":
            fields = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            fields = json.loads(path.read_text())
        else:
            raise ConfigError(f"config={str(path)!r} is invalid: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config={str(path)!r} is invalid: {err}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"config={str(path)!r} is invalid: expected a table of fields")
    return fields


def given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names}


def train_config(args: argparse.Namespace) -> TrainConfig:
    """A new run's config: the --config file's fields, overridden by the options given."""
    fields = read_config_file(args.config) if args.config is not None else {}
    config = TrainConfig.from_fields({**fields, **given_settings(args)})
    if config.out_dir is None:
        out = f"runs/{config.task}-{config.reward}-{config.sharing}-s{config.seed}"
        out += f"x{config.seeds}" if config.seeds > 1 else ""
        config = dataclasses.replace(config, out_dir=out)
    return config


def resumed_config(args: argparse.Namespace) -> TrainConfig:
    """The config saved in --resume DIR with the options given (only RESUMABLE_CHANGES)."""
    from c3rl_jax.training import saved_config

    given = given_settings(args)
    fixed = sorted(set(given) - set(RESUMABLE_CHANGES))
    fixed += [name for name in ("config", "sharing_matrix") if getattr(args, name) is not None]
    if fixed:
        raise ConfigError(
            f"{', '.join(fixed)} cannot change on --resume (the run keeps its saved settings); "
            f"allowed: {', '.join(RESUMABLE_CHANGES)}"
        )
    return dataclasses.replace(saved_config(args.resume), **given)


def train_command(args: argparse.Namespace) -> None:
    from c3rl_jax.training import train

    if args.resume is not None:
        out, results = args.resume, train(resumed_config(args), resume=args.resume)
    else:
        config = train_config(args)
        matrix = None if args.sharing_matrix is None else _load_matrix(args.sharing_matrix)
        out, results = config.out_dir, train(config, sharing_matrix=matrix)
    if isinstance(results, list):  # seeds > 1: one Results per replica
        print_replicas(results, out)
    else:
        print_summary(results, out)
    if args.plot:
        plot_command(argparse.Namespace(runs=[out], out=None, threshold=None))


COMMANDS = {
    "train": train_command,
    "eval": eval_command,
    "plot": plot_command,
    "render": render_command,
    "transfer": transfer_command,
}


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as `c3rl: warning: ...`, without the source line a Python user would want."""
    print(f"c3rl: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores the warning display afterwards
        warnings.showwarning = one_line_warning
        try:
            COMMANDS[args.command](args)
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
