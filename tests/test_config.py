import dataclasses

import pytest

from c3rl_jax import ConfigError, TrainConfig, get_task, register_task
from c3rl_jax.config import TUNABLE_DEFAULTS


def test_unset_settings_come_from_the_task_then_the_package():
    task = get_task("pendulum")
    custom = dataclasses.replace(
        task, name="pendulum-long", defaults={"episodes": 7, "actor_lr": 3e-4}
    )
    register_task(custom)
    config = TrainConfig(task="pendulum-long", critic_lr=5e-4).resolved()
    assert config.episodes == 7 and config.actor_lr == 3e-4  # task defaults
    assert config.critic_lr == 5e-4  # the user's value wins
    assert config.tau == TUNABLE_DEFAULTS["tau"]  # package default
    assert (
        config.learner_config.actor_lr == 3e-4
        and config.explore.sigma == TUNABLE_DEFAULTS["ou_sigma"]
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("task", "walker", "task='walker' is invalid: one of"),
        ("reward", "shaped", "reward='shaped' is invalid"),
        ("sharing", "everyone", "sharing='everyone' is invalid"),
        ("n_agents", 0, "n_agents=0 is invalid: a positive integer"),
        ("n_agents", 2.5, "n_agents=2.5"),
        ("episodes", -1, "episodes=-1"),
        ("batch_size", True, "batch_size=True"),
        ("hidden", (64, 0), "hidden=\\(64, 0\\)"),
        ("actor_lr", float("nan"), "actor_lr=nan"),
        ("gamma", 1.5, "gamma=1.5 is invalid: in \\[0, 1\\]"),
        ("tau", 2.0, "tau=2.0"),
        ("warmup_steps", -5, "warmup_steps=-5"),
        ("ou_sigma", -0.1, "ou_sigma=-0.1"),
        ("seed", "zero", "seed='zero'"),
        ("rebuild_fit_steps", 0, "rebuild_fit_steps=0 is invalid: None .* or a positive integer"),
        (
            "mechanism",
            "agent_gp",
            "mechanism='agent_gp' is invalid: None: sharing='individual' does not rebuild",
        ),
    ],
)
def test_bad_settings_name_the_field_and_value(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value}).resolved()


def test_mechanism_defaults_by_sharing_mode_and_is_validated():
    assert TrainConfig(sharing="c3rl").resolved().mechanism == "agent_gp"
    assert TrainConfig(sharing="sysid").resolved().mechanism == "sysid"
    assert TrainConfig(sharing="c3rl", mechanism="anm_mm").resolved().mechanism == "anm_mm"
    with pytest.raises(ConfigError, match="mechanism='gp' is invalid: one of \\['agent_gp'"):
        TrainConfig(sharing="c3rl", mechanism="gp").resolved()
    with pytest.raises(
        ConfigError, match="mechanism='anm_mm' is invalid: one of \\['sysid'\\] for sharing='sysid'"
    ):
        TrainConfig(sharing="sysid", mechanism="anm_mm").resolved()


@pytest.mark.parametrize(
    "task, mechanism, samples",
    [
        ("ar", "agent_gp", 50),  # 2 obs + 1 action columns
        ("pendulum", "agent_gp", 50),  # 3 + 1
        ("cartpole_swingup", "agent_gp", 100),  # 5 + 1
        ("cartpole_swingup", "anm_mm", 20),
    ],
)
def test_rebuild_samples_default_to_the_method_rule_for_the_task_inputs(task, mechanism, samples):
    config = TrainConfig(task=task, sharing="c3rl", mechanism=mechanism).resolved()
    assert config.rebuild_samples == samples
    mine = TrainConfig(task=task, sharing="c3rl", mechanism=mechanism, rebuild_samples=7)
    assert mine.resolved().rebuild_samples == 7


def test_configs_saved_before_the_mechanism_choice_load_as_anm_mm():
    saved = dataclasses.asdict(TrainConfig(sharing="c3rl"))
    del saved["mechanism"]
    assert TrainConfig.from_dict(saved).resolved().mechanism == "anm_mm"


def test_configs_saved_before_rebuilds_drew_from_the_warmup_did_not():
    saved = dataclasses.asdict(TrainConfig(sharing="c3rl"))
    assert saved["rebuild_warmup"] is True  # the default now
    del saved["rebuild_warmup"]
    assert TrainConfig.from_dict(saved).rebuild_warmup is False
    with pytest.raises(ConfigError, match="rebuild_warmup=1 is invalid"):
        TrainConfig(sharing="c3rl", rebuild_warmup=1).resolved()


def test_configs_saved_before_the_rebuild_window_keep_the_last_k_episodes():
    saved = dataclasses.asdict(TrainConfig(sharing="c3rl", rebuild_every=4))
    del saved["rebuild_window"]
    assert TrainConfig.from_dict(saved).rebuild_window == 4  # what rebuilds drew from then
    del saved["sharing"]
    assert TrainConfig.from_dict(saved).rebuild_window is None
    assert TrainConfig(sharing="c3rl").resolved().rebuild_window is None  # now: everything
    with pytest.raises(ConfigError, match="rebuild_window=0 is invalid"):
        TrainConfig(sharing="c3rl", rebuild_window=0).resolved()
