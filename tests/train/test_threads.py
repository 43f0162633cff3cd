"""The intra-op thread policy of training (lstmkit.train.threads): a spy inside fit reads
torch's thread count at every epoch; the count is put back afterwards, and every override
(TrainConfig.threads, LSTMKIT_THREADS / lstmkit --threads, the user's own choice) wins."""

import os

import pytest
import torch
from torch import nn

from lstmkit.cli import main
from lstmkit.train import threads
from lstmkit.train.loop import TrainConfig, fit


@pytest.fixture
def two_threads(monkeypatch):
    """A machine whose torch default is 2 threads, with no thread variable set."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "_AT_IMPORT", 2)
    for name in (threads.THREADS_ENV, *threads._USER_ENV):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(before)


def counts_during_fit(model: nn.Module, **cfg) -> list[int]:
    seen = []
    data = {"x": torch.randn(8, model.in_features), "y": torch.randn(8, model.out_features)}

    def loss(net, batch):
        return nn.functional.mse_loss(net(batch["x"]), batch["y"]), len(batch["x"])

    fit(
        model,
        loss,
        data,
        None,
        TrainConfig(epochs=2, batch_size=4, progress=False, **cfg),
        callback=lambda record: seen.append(torch.get_num_threads()),
    )
    return seen


def test_a_small_model_trains_on_one_thread_and_the_count_is_put_back(two_threads):
    small = nn.Linear(10, 10)  # 110 parameters
    assert counts_during_fit(small) == [1, 1]
    assert torch.get_num_threads() == 2


def test_a_model_above_the_bound_keeps_torchs_threads(two_threads):
    big = nn.Linear(400, 301)  # 120,701 parameters > SMALL_MODEL
    assert sum(p.numel() for p in big.parameters()) > threads.SMALL_MODEL
    assert counts_during_fit(big) == [2, 2]


def test_overrides_in_their_order(two_threads, monkeypatch):
    small = nn.Linear(10, 10)
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    assert counts_during_fit(small) == [2, 2]
    assert counts_during_fit(small, threads=3) == [3, 3]  # the config's count first
    monkeypatch.delenv(threads.THREADS_ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user chose: kept as it is
    assert counts_during_fit(small) == [2, 2]
    monkeypatch.delenv("OMP_NUM_THREADS")
    torch.set_num_threads(3)  # set after import: kept too
    assert counts_during_fit(small) == [3, 3]


def test_bad_counts_are_refused(two_threads, monkeypatch):
    with pytest.raises(ValueError, match="threads: expected None or an int >= 1, got 0"):
        TrainConfig(threads=0)
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(ValueError, match="LSTMKIT_THREADS: expected an integer >= 1, got 'many'"):
        threads.threads_for(nn.Linear(2, 2))


def test_cli_threads_reach_training_and_hold_for_one_command(two_threads, monkeypatch, tmp_path):
    seen = []
    real = threads.threads_for

    def spy(model, requested=None):
        seen.append(real(model, requested))
        return seen[-1]

    monkeypatch.setattr(threads, "threads_for", spy)
    args = ["forecast", "--data", "airline", "--epochs", "2", "--hidden-size", "4", "--quiet"]
    assert main(["--threads", "2", *args, "--out", str(tmp_path / "a")]) == 0
    assert seen == [2]  # the forecaster's one fit, on the threads asked for
    assert threads.THREADS_ENV not in os.environ
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert seen == [2, 1]  # the next command: the policy again


def test_generation_steps_on_one_thread_unless_the_user_chose(two_threads, monkeypatch):
    """TextGenerator.generate samples under stepping_threads: a spy on the network's step
    reads the count; the user's LSTMKIT_THREADS wins; the count is put back."""
    from lstmkit.tasks import TextGenerator

    model = TextGenerator(hidden_size=8, embedding_size=4, num_layers=1, epochs=1, progress=False)
    model.fit(["白日依山尽，黄河入海流。", "欲穷千里目，更上一层楼。"] * 4)
    seen = []
    step = model.net_.step

    def spy(*args):
        seen.append(torch.get_num_threads())
        return step(*args)

    monkeypatch.setattr(model.net_, "step", spy)
    model.generate(seed=0, max_length=6)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
    seen.clear()
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    model.generate(seed=0, max_length=6)
    assert seen and set(seen) == {2}
