"""The command line generated from TrainConfig: every field reachable, --config files, resume."""

import dataclasses
import json

import pytest

from c3rl_jax import ConfigError, Results, TrainConfig
from c3rl_jax.checkpoint import RESUMABLE_CHANGES
from c3rl_jax.cli import build_parser, given_settings, main, train_config
from c3rl_jax.config import TUNABLE_DEFAULTS

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
