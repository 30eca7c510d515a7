"""Query sets, answer files, the labelling state behind the widget, and rendering segments to clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipl_core.data import DataFormatError, load_preferences
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.labels import (
    answers_text,
    fnv1a_32,
    load_labels,
    load_query_set,
    read_answers,
    write_answers,
)
from ipl_core.labelling import LabellingState, agreement, make_query_set, oracle_labels, scripted_answers
from ipl_core.labelling_widget import handle, view_state
from ipl_core.render import PhysicsStates, pair_frames
from ipl_core.teachers import TEACHERS

NUM_PAIRS, LENGTH = 12, 4


class ColourRenderer:
    """A stand-in renderer: frame t of row r is filled with grey level r (mod 256)."""

    def frames(self, states: PhysicsStates, rows: np.ndarray) -> np.ndarray:
        return np.stack([np.full((16, 16, 3), r % 256, dtype=np.uint8) for r in rows])

    def close(self) -> None:
        pass


def toy_offline(episodes: int = 6, length: int = 20) -> OfflineDataset:
    rng = np.random.default_rng(0)
    n = episodes * length
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    timeouts = np.tile(np.arange(length) == length - 1, episodes)
    return OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), obs.copy(),
                          np.arange(n, dtype=np.float32) % 7, np.zeros(n, bool), timeouts, source="toy")


@pytest.fixture(scope="module")
def query_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("imageio_ffmpeg", reason="clips need imageio-ffmpeg (the envs extra)")
    folder = tmp_path_factory.mktemp("queries") / "toy"
    offline = toy_offline()
    states = PhysicsStates(qpos=np.zeros((len(offline), 1)), qvel=np.zeros((len(offline), 1)))
    make_query_set(folder, offline, states, ColourRenderer, "toy/v0", "Which is better?", NUM_PAIRS, LENGTH,
                   seed=3, fps=5)
    return folder


def test_fnv1a_matches_the_published_test_vectors() -> None:
    assert fnv1a_32("") == "811c9dc5"
    assert fnv1a_32("a") == "e40c292c"
    assert fnv1a_32("foobar") == "bf9cf968"
    assert answers_text([(0, "left"), (3, "skip")]) == "0:left,3:skip"


def test_query_set_holds_the_drawn_segments_and_one_clip_per_pair(query_folder: Path) -> None:
    import imageio.v3 as iio

    queries = load_query_set(query_folder)
    offline = toy_offline()
    assert len(queries) == NUM_PAIRS and queries.segment_length == LENGTH
    segments = queries.segments()
    for i, (a, b) in enumerate(queries.starts):
        assert a != b
        np.testing.assert_array_equal(segments["obs_1"][i], offline.observations[a : a + LENGTH])
        np.testing.assert_array_equal(segments["reward_2"][i], offline.rewards[b : b + LENGTH])
    frames = iio.imread(queries.clip(0), plugin="FFMPEG")
    assert frames.shape[0] == LENGTH and frames.shape[2] == 32  # two 16-pixel segments side by side
    # the left half shows row start_1, the right half row start_2 (grey levels, up to video compression)
    assert abs(float(frames[0, :, :6].mean()) - queries.starts[0, 0] % 256) < 12
    assert abs(float(frames[0, :, -6:].mean()) - queries.starts[0, 1] % 256) < 12
    manifest = json.loads((query_folder / "pairs.json.manifest.json").read_text())
    assert manifest["params"]["fingerprint"] == queries.fingerprint


def test_pair_frames_puts_segment_1_left() -> None:
    left, right = np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 200, np.uint8)
    both = pair_frames(left, right)
    assert both.shape == (2, 4, 8, 3) and both[0, 0, 0, 0] == 0 and both[0, 0, -1, 0] == 200
    with pytest.raises(ValueError, match="same frames"):
        pair_frames(left, right[:1])


def test_answers_round_trip_and_skips_are_dropped(query_folder: Path, tmp_path: Path) -> None:
    queries = load_query_set(query_folder)
    answers = [(2, "left"), (0, "right"), (1, "skip"), (5, "equal")]
    path = write_answers(tmp_path / "answers.json", queries, answers)
    assert read_answers(path, queries) == answers
    prefs = load_labels(path, query_folder)
    assert prefs.label.tolist() == [0.0, 1.0, 0.5]  # pairs 0, 2, 5 in pair order
    np.testing.assert_array_equal(prefs.obs_1[1], queries.segments()["obs_1"][2])


def _edit(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(dataset_id="metaworld/button-press/x"),
     "dataset_id is 'metaworld/button-press/x'.*another dataset"),
    (lambda d: d.update(num_pairs=99), "num_pairs is 99; the query set has 12 pairs"),
    (lambda d: d["answers"][1].update(answer="maybe"), r"answers\[1\]\.answer is 'maybe'; expected one of"),
    (lambda d: d["answers"][0].update(pair=12),
     r"answers\[0\]\.pair is 12; expected an integer in \[0, 12\)"),
    (lambda d: d["answers"].append({"pair": 2, "answer": "left"}), "answers pair 2 a second time"),
    (lambda d: d["answers"][0].update(answer="right"), "checksum .* changed after it was exported"),
    (lambda d: d.update(fingerprint="0" * 16), "answers another draw of pairs"),
    (lambda d: d.update(format="something"), "field 'format' is 'something'"),
])
def test_bad_answer_files_name_what_does_not_match(query_folder: Path, tmp_path: Path, change,
                                                   message: str) -> None:
    queries = load_query_set(query_folder)
    path = write_answers(tmp_path / "answers.json", queries, [(0, "left"), (2, "right"), (3, "equal")])
    _edit(path, change)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DataFormatError, match=message):
        load_labels(path, query_folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_truncated_and_empty_answer_files_are_refused(query_folder: Path, tmp_path: Path) -> None:
    queries = load_query_set(query_folder)
    path = write_answers(tmp_path / "answers.json", queries, [(0, "left"), (1, "right")])
    path.write_text(path.read_text()[:70])
    with pytest.raises(DataFormatError, match=r"not valid JSON .* may be truncated"):
        load_labels(path, query_folder)
    path.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        load_labels(path, query_folder)
    only_skips = write_answers(tmp_path / "skips.json", queries, [(0, "skip")])
    with pytest.raises(DataFormatError, match="no pair is labelled"):
        load_labels(only_skips, query_folder)


def test_labelling_answers_undo_skip_and_resume(query_folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "my_labels.npz"
    state = LabellingState(query_folder, path)
    assert (state.current, state.done, state.total) == (0, 0, NUM_PAIRS)
    for choice in ("left", "right", "skip", "equal"):
        state.answer(choice)
    assert state.undo() == 3 and state.current == 3
    state.answer("right")
    assert state.labels() == {0: 1.0, 1: 0.0, 3: 0.0}
    # saved at once in the native format: load_preferences reads the labelled pairs
    prefs = load_preferences(path)
    assert prefs.label.tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(prefs.obs_2[2], state.segments["obs_2"][3])
    assert [p.name for p in tmp_path.iterdir()] == ["my_labels.npz"]  # no temporary file left behind
    # a new state on the same file resumes where this one stopped, undo included
    again = LabellingState(query_folder, path)
    assert again.history == state.history and again.current == 4
    assert again.undo() == 3 and LabellingState(query_folder, path).current == 3


def test_labelling_refuses_a_file_of_another_query_set(query_folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    offline = toy_offline()
    states = PhysicsStates(qpos=np.zeros((len(offline), 1)), qvel=np.zeros((len(offline), 1)))
    make_query_set(other, offline, states, ColourRenderer, "toy/v1", "?", 3, LENGTH, seed=0, fps=5)
    path = tmp_path / "labels.npz"
    LabellingState(other, path).answer("left")
    before = path.read_bytes()
    with pytest.raises(DataFormatError, match="made for dataset 'toy/v1', not 'toy/v0'"):
        LabellingState(query_folder, path)
    assert path.read_bytes() == before


def test_labelling_export_is_what_the_page_exports(query_folder: Path, tmp_path: Path) -> None:
    state = LabellingState(query_folder, tmp_path / "s.npz")
    for choice in ("left", "skip", "right"):
        state.answer(choice)
    exported = state.export(tmp_path / "export.json")
    assert read_answers(exported, state.queries) == [(0, "left"), (1, "skip"), (2, "right")]
    np.testing.assert_array_equal(load_labels(exported, query_folder).label, state.preferences().label)


def test_answering_past_the_end_and_unknown_answers_raise(query_folder: Path, tmp_path: Path) -> None:
    state = LabellingState(query_folder, tmp_path / "s.npz")
    with pytest.raises(ValueError, match="expected one of"):
        state.answer("both")
    for _ in range(NUM_PAIRS):
        state.answer("skip")
    assert state.current is None
    with pytest.raises(ValueError, match="all 12 pairs are answered"):
        state.answer("left")


def test_widget_actions_go_through_the_labelling_state(query_folder: Path, tmp_path: Path) -> None:
    labelling = LabellingState(query_folder, tmp_path / "w.npz")
    view = view_state(labelling)
    assert view["pair"] == 0 and view["clip"].startswith("data:video/mp4;base64,")
    assert view["question"] == "Which is better?" and view["total"] == NUM_PAIRS
    assert "Saved 'left' for pair 1" in handle(labelling, "left")
    assert handle(labelling, "undo") == "Took back the answer to pair 1."
    assert handle(labelling, "undo") == "Nothing to undo."
    handle(labelling, "equal")
    assert view_state(labelling)["done"] == 1 and labelling.labels() == {0: 0.5}


def test_scripted_answers_follow_the_rewards(query_folder: Path) -> None:
    queries = load_query_set(query_folder)
    oracle = scripted_answers(queries, TEACHERS["oracle"], np.random.default_rng(0))
    labels = np.array([{"left": 1.0, "right": 0.0, "equal": 0.5}[a] for _, a in oracle])
    np.testing.assert_array_equal(labels, oracle_labels(queries))
    assert agreement(labels, oracle_labels(queries)) == 1.0
    assert agreement(np.array([1.0, 0.5]), np.array([0.0, 1.0])) == 0.25


def test_locomotion_states_read_back_from_observations(tmp_path: Path) -> None:
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from ipl_core.render import locomotion_physics

    env = gym.make("Hopper-v5")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    rows, qpos, qvel = [], [], []
    for _ in range(30):
        rows.append(obs)
        qpos.append(env.unwrapped.data.qpos.copy()), qvel.append(env.unwrapped.data.qvel.copy())
        obs, *_ = env.step(rng.uniform(-0.3, 0.3, 3))
    obs_arr = np.asarray(rows, dtype=np.float32)
    timeouts = np.zeros(30, bool)
    timeouts[-1] = True
    offline = OfflineDataset(obs_arr, np.zeros((30, 3), np.float32), obs_arr, np.zeros(30, np.float32),
                             np.zeros(30, bool), timeouts, source="hopper-test")
    states = locomotion_physics(offline, "hopper")
    qpos, qvel = np.asarray(qpos), np.asarray(qvel)
    np.testing.assert_allclose(states.qpos[:, 1:], qpos[:, 1:], atol=1e-5)
    np.testing.assert_allclose(states.qvel, qvel, atol=1e-5)
    # x is integrated from the velocity: close to the simulator's, starting from 0
    np.testing.assert_allclose(states.qpos[:, 0], qpos[:, 0] - qpos[0, 0], atol=0.02)

    pytest.importorskip("imageio_ffmpeg", reason="clips need imageio-ffmpeg (the envs extra)")
    from ipl_core.data.d4rl import write_d4rl_hdf5
    from ipl_core.labelling import locomotion_query_set

    data_file = write_d4rl_hdf5(tmp_path / "hopper-test.hdf5", offline)
    queries, _ = locomotion_query_set(tmp_path / "set", data_file, "hopper", num_pairs=2, segment_length=3)
    assert queries.dataset_id.startswith("locomotion/hopper/hopper-test/")
    assert queries.question == "Which robot hops forward better?" and queries.clip(1).stat().st_size > 1000


def test_metaworld_segments_render_from_replayed_states(tmp_path: Path) -> None:
    """The replayed physics reproduce the stored observations; tampered data is refused; frames move."""
    pytest.importorskip("metaworld")
    pytest.importorskip("imageio_ffmpeg", reason="clips need imageio-ffmpeg (the envs extra)")
    import shutil

    from ipl_core.data.d4rl import load_d4rl_hdf5, write_d4rl_hdf5
    from ipl_core.data.metaworld_gen import generate_metaworld, metaworld_recipe
    from ipl_core.labelling import metaworld_query_set
    from ipl_core.render import (
        METAWORLD_CAMERA,
        FrameRenderer,
        _replay_metaworld,
        load_physics,
        metaworld_model,
        metaworld_physics,
    )

    recipe = metaworld_recipe("drawer-open", "smoke")
    states = load_physics(metaworld_physics(recipe, root=tmp_path))
    offline = load_d4rl_hdf5(generate_metaworld(recipe, root=tmp_path, progress=False).offline)
    assert len(states) == len(offline) and states.body_pos is not None
    assert states.body_pos.shape[0] == 4 * recipe.episodes_per_source  # one layout per episode
    # the hand (mocap) and the arm's joints move during an episode
    assert np.ptp(states.qpos[:50], axis=0).max() > 0.01
    draw = FrameRenderer(metaworld_model("drawer-open"), METAWORLD_CAMERA, size=64)
    frames = draw.frames(states, np.array([0, 30, 49]))
    draw.close()
    assert frames.shape == (3, 64, 64, 3) and frames.std() > 10
    assert np.abs(frames[0].astype(int) - frames[2]).mean() > 0.5  # the arm moved between the two rows

    files = generate_metaworld(recipe, root=tmp_path, progress=False)
    tampered = tmp_path / "expert.hdf5"
    shutil.copy(files.sources["expert"], tampered)
    data = load_d4rl_hdf5(tampered)
    data.observations[10, 0] += 0.01
    tampered.unlink()
    write_d4rl_hdf5(tampered, data)
    with pytest.raises(RuntimeError, match="replayed episodes differ"):
        _replay_metaworld(recipe, dict(files.sources, expert=tampered))

    queries, _ = metaworld_query_set(tmp_path / "set", recipe, num_pairs=2, segment_length=3, root=tmp_path)
    assert queries.dataset_id == "metaworld/drawer-open/e2_l50_n1.0_s0"
    assert queries.question == "Which robot opens the drawer better?"
    assert all(queries.clip(i).stat().st_size > 1000 for i in range(2))
