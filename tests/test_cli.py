"""The command line generated from TrainConfig: every field reachable, --config files, resume."""

import dataclasses
import json
import subprocess
import sys
import typing

import numpy as np
import pytest

from c3rl_jax import ConfigError, Results, TrainConfig
from c3rl_jax.cli import build_parser, given_settings, main, train_config
from c3rl_jax.config import RESUMABLE_CHANGES, TUNABLE_DEFAULTS

FIELDS = dataclasses.fields(TrainConfig)


def _value(f: dataclasses.Field):
    """A valid non-default value of a field, and its command-line spelling (None: a switch)."""
    if f.type is bool:
        return not f.default, None
    default = TUNABLE_DEFAULTS.get(f.name, f.default)
    special = {
        "task": ("ar", "ar"),
        "reward": ("sparse", "sparse"),
        "sharing": ("c3rl", "c3rl"),
        "mechanism": ("sysid", "sysid"),
        "exploration": ("gaussian", "gaussian"),
        "mean_draws": ("independent", "independent"),
        "hidden": ((8, 4), "8,4"),
        "compile_cache": ("off", "off"),
        "learner": ("td3", "td3"),
    }
    if f.name in special:
        return special[f.name]
    if f.name.endswith("_dir"):
        return "some/dir", "some/dir"
    if isinstance(default, float):
        return default / 2, str(default / 2)
    return (default or 1) + 1, str((default or 1) + 1)


def _flag(f: dataclasses.Field) -> str:
    options = build_parser()._subparsers._group_actions[0].choices["train"]._actions
    return next(a for a in options if a.dest == f.name).option_strings[0]


@pytest.mark.parametrize("f", FIELDS, ids=[f.name for f in FIELDS])
def test_every_config_field_has_an_option_with_help(f):
    value, text = _value(f)
    argv = ["train", _flag(f)] + ([] if text is None else [text])
    given = given_settings(build_parser().parse_args(argv))
    assert given == {f.name: value}
    assert f.metadata["help"]


def test_options_not_given_keep_the_defaults_and_old_flag_names_still_work():
    args = build_parser().parse_args(["train"])
    assert given_settings(args) == {}
    config = train_config(args)
    assert config == dataclasses.replace(TrainConfig(), out_dir="runs/pendulum-dense-individual-s0")
    old = ["--agents", "4", "--out", "x", "--clusters", "2", "--profile", "p", "--no-progress"]
    given = given_settings(build_parser().parse_args(["train", *old]))
    expected = {"n_agents": 4, "out_dir": "x", "n_clusters": 2, "profile_dir": "p"}
    assert given == {**expected, "progress": False}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_config_file_round_trips_and_the_command_line_overrides_it(tmp_path, suffix):
    want = TrainConfig(
        task="ar", sharing="c3rl", n_agents=6, hidden=(32, 16), actor_lr=3e-4, out_dir="runs/a"
    )
    fields = {k: v for k, v in dataclasses.asdict(want).items() if v is not None}
    path = tmp_path / f"run{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(fields))
    else:  # None has no TOML spelling: unset fields are left out, as a user would
        value = lambda v: json.dumps(list(v) if isinstance(v, tuple) else v)  # noqa: E731
        path.write_text("\n".join(f"{k} = {value(v)}" for k, v in fields.items()))
    config = train_config(build_parser().parse_args(["train", "--config", str(path)]))
    assert config == want
    args = build_parser().parse_args(["train", "--config", str(path), "--agents", "8"])
    assert train_config(args) == dataclasses.replace(want, n_agents=8)


def test_bad_config_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("episodes = [")
    (tmp_path / "typo.json").write_text(json.dumps({"episdes": 3}))
    (tmp_path / "run.yaml").write_text("episodes: 3")
    cases = {
        "missing.toml": "no such file",
        "bad.toml": "config=",
        "typo.json": "config fields=['episdes'] is invalid",
        "run.yaml": "expected a .toml or .json file",
    }
    for name, message in cases.items():
        assert main(["train", "--config", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("c3rl: error: ") and message in err and "\n" not in err


def test_resume_keeps_checkpoint_every_and_profile_and_refuses_other_changes(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = ["--agents", "3", "--hidden", "8", "--batch-size", "8", "--buffer-size", "256"]
    tiny += ["--warmup-steps", "50", "--no-progress", "--checkpoint-every", "1"]
    tiny += ["--episodes-per-chunk", "1"]
    assert main(["train", *tiny, "--episodes", "1", "--out", str(run)]) == 0
    profile = tmp_path / "trace"
    argv = ["train", "--resume", str(run), "--episodes", "3", "--checkpoint-every", "2"]
    assert main([*argv, "--profile", str(profile)]) == 0
    saved = Results.load(run).config
    assert saved["checkpoint_every"] == 2 and saved["profile_dir"] == str(profile)
    # chunks end at episodes 2 and 3: every 2 episodes saves only at 3 (every 1 would save
    # at 2 and 3, and keep those two)
    kept = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == ["1", "3"]
    assert any(p.name.endswith(".xplane.pb") for p in profile.rglob("*"))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--seed", "3", "--agents", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "c3rl: error: n_agents, seed cannot change on --resume (the run keeps its saved "
        f"settings); allowed: {', '.join(RESUMABLE_CHANGES)}"
    )


def test_unknown_config_fields_from_python_name_the_field():
    with pytest.raises(ConfigError, match=r"config fields=\['agents'\] is invalid"):
        TrainConfig.from_fields({"agents": 3})


def _bad_spellings(f: dataclasses.Field) -> list[str]:
    """Command-line values every one of which the field must refuse."""
    kinds = {a for a in typing.get_args(f.type) if a is not type(None)} or {f.type}
    if f.name in ("out_dir", "profile_dir"):
        return []  # any path is a valid folder name
    if f.name == "hidden":
        return ["a,b", "0", "8,-4", ""]
    if f.name == "compile_cache":
        return [""]
    if str in kinds:
        return ["nope", "PENDULUM"]
    if int in kinds:
        return ["x", "1.5", "1e3"] + ([] if f.name == "seed" else ["-1"])
    if float in kinds:
        return ["x", "nan", "inf", "-1"]
    return []


BAD_LINES = [
    ["train", _flag(f), value] for f in FIELDS if f.type is not bool for value in _bad_spellings(f)
]
BAD_LINES += [["train", _flag(f) + "=1"] for f in FIELDS if f.type is bool]
BAD_LINES += [
    [],
    ["nope"],
    ["train", "--nope"],
    ["train", "--agents"],
    ["train", "--sharing", "custom"],
    ["train", "--sharing", "individual", "--mechanism", "agent_gp"],
    ["train", "--task", "ar", "--reward", "nope"],
    ["train", "--sharing", "custom", "--sharing-matrix", "missing.csv"],
    ["train", "--resume", "missing-run"],
    ["train", "--resume", "missing-run", "--agents", "3"],
    ["eval"],
    ["eval", "missing-run"],
    ["eval", "missing-run", "--episodes", "x"],
    ["plot"],
    ["plot", "missing-run"],
    ["render", "missing-run"],
    ["render", "missing-run", "--agent", "x"],
    ["transfer"],
    ["transfer", "--run", "missing-run"],
    ["transfer", "--run", "missing-run", "--param", "w"],
]


@pytest.mark.parametrize("argv", BAD_LINES, ids=" ".join)
def test_every_bad_command_line_is_a_one_line_error_with_exit_2(argv, capsys, tmp_path):
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("c3rl") and "error: " in err, err
    assert "Traceback" not in err


def test_a_non_numeric_sharing_matrix_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    argv = ["train", "--sharing", "custom", "--sharing-matrix", str(tmp_path / "bad.csv")]
    assert main([*argv, "--agents", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sharing_matrix=" in err and "matrix of numbers" in err


BUILT_IN_NAMES = """
import json
from c3rl_jax.causal.methods import mechanism_names
from c3rl_jax.exploration import MEAN_DRAWS, MODES
from c3rl_jax.learners import learner_names
from c3rl_jax.sharing import sharing_names
from c3rl_jax.tasks import task_names
print(json.dumps({"task": task_names(), "sharing": sharing_names(),
    "mechanism": mechanism_names(), "learner": learner_names(), "exploration": MODES,
    "mean_draws": MEAN_DRAWS}))
"""


def test_help_lists_every_built_in_name():
    """In a fresh process: other tests register names of their own."""
    done = subprocess.run([sys.executable, "-c", BUILT_IN_NAMES], capture_output=True, check=True)
    helps = {f.name: f.metadata["help"] for f in FIELDS}
    for field, allowed in json.loads(done.stdout).items():
        missing = [name for name in allowed if name not in helps[field]]
        assert not missing, f"{field}'s help does not name {missing}"


def test_help_imports_no_jax():
    code = "import sys, c3rl_jax.cli as c; c.build_parser(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_summary_shows_each_agents_cluster_and_data_sources(capsys):
    from c3rl_jax.cli import print_agents

    p = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5], [0.0, 0.0, 1.0]], np.float32)
    record = {"episode": 5, "n_clusters": 2, "ari": 0.5, "labels": [0, 1, 1]}
    results = Results(
        config={},
        returns=np.zeros((3, 5)),
        sharing_matrices=np.stack([np.eye(3), p]),
        sharing_index=np.zeros(5, np.int32),
        groups=np.array([0, 0, 1]),
        episode_length=200,
        compile_time=0.0,
        run_time=1.0,
        wall_time=1.0,
        extra={"rebuilds": [record]},
    )
    print_agents(results)
    lines = capsys.readouterr().out.splitlines()
    assert "episode 5): 2 clusters, ARI 0.50" in lines[1]
    # agent 1: half its rows from agents 0 and 1 (its group); 1 / (1/16 + 1/16 + 1/4) sources
    assert lines[4].split() == ["1", "0", "1", "50%", "2.7"]
    assert lines[3].split() == ["0", "0", "0", "100%", "2.0"]


def test_warnings_on_the_command_line_are_one_line(tmp_path, capsys):
    argv = ["train", "--episodes", "1", "--agents", "3", "--hidden", "8", "--buffer-size", "300"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "run")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        "c3rl: warning: episodes x steps per episode = 200 <= warmup_steps=1000: every action "
        "is random and nothing is learned; raise episodes or lower warmup_steps"
    ]
