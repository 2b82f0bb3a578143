"""Pictures of one trained agent's greedy episode on its own environment (`c3rl render`).

pendulum and cartpole_swingup: an animation, a GIF (or an MP4 when the path ends in .mp4 and
matplotlib finds ffmpeg). An episode of T steps is drawn every k-th step, k = ceil(T /
MAX_FRAMES): frames at steps 0, k, 2k, ... < T, so ceil(T / k) frames (T = 200: k = 2, 100
frames; T = 500: k = 5, 100 frames), played at the environment's speed (k * dt seconds a
frame). The frame of step t shows the observation the agent acted on at step t, and the return
of the steps before t. ar: a PNG of the state s_t and the target omega (top) and the action
(bottom) over the episode.

Drawn on matplotlib's Agg canvas without pyplot; nothing else in the package imports this
module at import time.
"""

import math
from functools import partial
from pathlib import Path

import jax
import numpy as np
from matplotlib import animation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from c3rl_jax.analysis.evaluation import episode
from c3rl_jax.analysis.plotting import figure, save
from c3rl_jax.errors import check

TASKS = ("pendulum", "cartpole_swingup", "ar")
MAX_FRAMES = 100  # at most this many frames an animation
DPI = 60
PENDULUM_SIZE = (3.0, 3.0)  # inches: 180 x 180 pixels at DPI
CARTPOLE_SIZE = (4.5, 2.25)  # inches: 270 x 135 pixels at DPI


def frame_stride(n_steps: int) -> int:
    """k: an animation of an `n_steps`-step episode draws every k-th step, ceil(n_steps /
    MAX_FRAMES) (at least 1)."""
    return max(1, math.ceil(n_steps / MAX_FRAMES))


def frame_steps(n_steps: int) -> np.ndarray:
    """The steps an animation of an `n_steps`-step episode draws: 0, k, 2k, ... < n_steps with
    k = frame_stride(n_steps), so ceil(n_steps / k) of them ([F])."""
    return np.arange(0, n_steps, frame_stride(n_steps))


def pendulum_tip(obs, length=1.0) -> tuple[np.ndarray, np.ndarray]:
    """obs [..., 3] = (cos theta, sin theta, theta_dot) -> the rod's tip (x, y), each [...],
    pivot at the origin: (length sin theta, length cos theta), so theta = 0 is upright, pi
    hanging, and a growing theta (what a positive wind w does) moves the tip toward +x."""
    obs = np.asarray(obs)
    return length * obs[..., 1], length * obs[..., 0]


def cartpole_positions(obs, half_length) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """obs [..., 5] = (x, x_dot, cos theta, sin theta, theta_dot) -> (cart x, pole tip x, pole
    tip y), each [...]: the pivot is at (x, 0), the pole 2 * half_length long, theta = 0
    upright and positive toward +x."""
    obs = np.asarray(obs)
    pole = 2 * half_length
    return obs[..., 0], obs[..., 0] + pole * obs[..., 3], pole * obs[..., 2]


def render(
    policy,
    agent: int,
    path: str | Path | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
) -> Path:
    """Draw one greedy episode (reset key PRNGKey(seed)) of agent `agent` of `policy` (a
    `c3rl_jax.analysis.policy.Policy`) on its own environment; return the file written.

    path: .gif or .mp4 for pendulum and cartpole_swingup, .png for ar; default
    `<run_dir>/render-agent<N>.gif` (.png for ar). A `Policy` does not know its folder, so
    the default needs `run_dir` (the folder given to `load_policy`). Raises ConfigError for a
    task other than pendulum, cartpole_swingup and ar, a bad agent index, a path with another
    ending, an .mp4 without ffmpeg, or neither `path` nor `run_dir`.
    """
    task = policy.config.task
    check(task in TASKS, "task", task, "render supports pendulum, cartpole_swingup and ar")
    n = policy.n_agents
    ok = isinstance(agent, int | np.integer) and not isinstance(agent, bool) and 0 <= agent < n
    check(ok, "agent", agent, f"an agent index in [0, {n})")
    agent = int(agent)
    suffixes = (".png",) if task == "ar" else (".gif", ".mp4")
    if path is None:
        check(run_dir is not None, "path", path, "a file path, or run_dir for the default one")
        path = Path(run_dir) / f"render-agent{agent}{suffixes[0]}"
    path = Path(path)
    check(path.suffix in suffixes, "path", str(path), f"a file ending in {' or '.join(suffixes)}")
    check(
        path.suffix != ".mp4" or animation.writers.is_available("ffmpeg"),
        "path",
        str(path),
        "a .gif file: .mp4 needs ffmpeg, which matplotlib cannot find",
    )
    obs, actions, rewards, params = _episode(policy, agent, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"{task}, agent {agent}"
    if task == "ar":
        return _ar_plot(obs, actions, rewards, params, title, path)
    scene, size = (_pendulum, PENDULUM_SIZE) if task == "pendulum" else (_cartpole, CARTPOLE_SIZE)
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86), aspect="equal", xticks=[], yticks=[])
    ax.set_title(title, fontsize=8)
    place = scene(ax, params)
    label = ax.text(0.02, 0.98, "", transform=ax.transAxes, va="top", fontsize=7)
    so_far = np.concatenate([[0.0], np.cumsum(rewards)])  # [T + 1]: return of steps before t
    frame_ms = max(1, round(1000 * frame_stride(len(obs)) * float(params.dt)))  # k * dt
    fps = 1000 / frame_ms  # whole milliseconds a frame, so GIF durations come out exact
    writer = (animation.FFMpegWriter if path.suffix == ".mp4" else animation.PillowWriter)(fps)
    with writer.saving(fig, path, DPI):
        for t in frame_steps(len(obs)):
            place(obs[t])
            label.set_text(f"step {t}/{len(obs)}\nreturn {so_far[t]:.1f}")
            writer.grab_frame()
    return path


def _episode(policy, agent: int, seed: int):
    """Agent `agent`'s greedy episode: obs [T, obs_dim] (what it acted on), actions [T,
    act_dim] in the environment's units, rewards [T], and its env params (scalar leaves);
    T counts the steps up to termination."""
    actor, params = (
        jax.tree.map(lambda leaf: leaf[agent], tree)
        for tree in (policy.run.state.agents.actor, policy.env_params)
    )
    run = jax.jit(partial(episode, policy.env, policy.learner))
    _, data, alive = run(actor, params, jax.random.PRNGKey(seed))
    high = np.broadcast_to(policy.env.action_space(params).high, (policy.learner.act_dim,))
    t = int(np.asarray(alive).sum())
    actions = np.asarray(data.action)[:t] * np.asarray(high)
    return np.asarray(data.obs)[:t], actions, np.asarray(data.reward)[:t], params


def _pendulum(ax, params):
    """Draw the fixed parts of a pendulum frame on `ax` (limits, the wind: an arrow along +x
    for w > 0, |w| / 2 m long, labelled); return place(obs [3]), which moves the rod."""
    length, w = float(params.l), float(params.w)
    reach = 1.35 * length
    ax.set(xlim=(-reach, reach), ylim=(-reach, reach))
    (rod,) = ax.plot([], [], color="tab:blue", linewidth=3, marker="o", markevery=[1])
    y = -0.85 * reach
    if w:
        tip = (float(np.clip(w / 2, -reach, reach)), y)
        ax.annotate("", tip, (0.0, y), arrowprops={"arrowstyle": "->", "color": "teal"})
    ax.text(0.0, y - 0.05 * reach, f"wind w={w:+.2f} N", ha="center", va="top", fontsize=7)

    def place(obs):
        x, y = pendulum_tip(obs, length)
        rod.set_data([0.0, x], [0.0, y])

    return place


def _cartpole(ax, params):
    """Draw the fixed parts of a cart-pole frame on `ax` (limits, the rail and its ends at
    +-x_limit); return place(obs [5]), which moves the cart and the pole."""
    limit, half = float(params.x_limit), float(params.half_length)
    reach = limit + 2 * half + 0.1  # a pole tipped over the rail's end stays in sight
    ax.set(xlim=(-reach, reach), ylim=(-2 * half - 0.2, 2 * half + 0.2))
    ax.plot([-limit, limit], [0, 0], color="grey")
    ax.vlines([-limit, limit], -0.15, 0.15, color="black")
    cart = ax.add_patch(Rectangle((0, -0.1), 0.4, 0.2, color="tab:grey"))
    (pole,) = ax.plot([], [], color="tab:orange", linewidth=3)

    def place(obs):
        x, tip_x, tip_y = cartpole_positions(obs, half)
        cart.set_x(x - 0.2)
        pole.set_data([x, tip_x], [0.0, tip_y])

    return place


def _ar_plot(obs, actions, rewards, params, title: str, path: Path) -> Path:
    """The PNG of an ar episode: s_t (obs[:, 0], [T]) and omega above, a_t ([T]) below."""
    fig, (top, bottom) = figure(
        2, cols=1, panel=(5.0, 2.2), title=f"{title}, return {rewards.sum():.1f}"
    )
    steps = np.arange(len(obs))
    top.plot(steps, obs[:, 0], label="state s_t")
    top.axhline(float(params.omega), color="grey", linestyle=":", label="target omega")
    top.set(ylabel="state")
    top.legend(fontsize=7)
    bottom.plot(steps, actions[:, 0], color="tab:orange")
    bottom.set(xlabel="step t", ylabel="action a_t")
    return save(fig, path)
