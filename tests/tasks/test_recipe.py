"""The sequence recipe (docs/classification.md) against hand computations and torch:
window means and patches, the convolutional branch against torch's "same" convolutions,
padding that never leaks, ensembles against their members, augmentation off in
evaluation, the one-cycle schedule against torch's OneCycleLR (and its exact resume), the
length buckets, the budget, and the one-line errors on bad input."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit.data.augment import augment_batch, check_augment
from lstmkit.data.scaling import QUIET, level_and_scale, standardise_each
from lstmkit.tasks.networks import ConvBranch, RecurrentNet, patches, window_mean
from lstmkit.tasks.sequence import (
    EnsembleNet,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    budget_epochs,
    stride_for,
)
from lstmkit.train.loop import TrainConfig, batches, fit


def _ragged(rng, lengths, channels=2):
    return [rng.normal(size=(int(n), channels)) for n in lengths]


def _padded(seqs, junk=0.0):
    x = torch.full((len(seqs), max(len(s) for s in seqs), seqs[0].shape[1]), junk)
    for n, s in enumerate(seqs):
        x[n, : len(s)] = torch.from_numpy(s).float()
    return x, torch.tensor([len(s) for s in seqs])


# -- window means and patches --------------------------------------------------------------


def test_window_means_by_hand():
    rng = np.random.default_rng(0)
    seqs = _ragged(rng, [7, 3, 9, 1])
    x, lengths = _padded(seqs, junk=1e6)  # junk past each end must never count
    out, new = window_mean(x, lengths, 3)
    assert new.tolist() == [3, 1, 3, 1]
    for n, s in enumerate(seqs):
        for j in range(math.ceil(len(s) / 3)):
            want = s[3 * j : 3 * j + 3].mean(0)  # the last window: its real steps only
            np.testing.assert_allclose(out[n, j].numpy(), want, rtol=1e-6, atol=1e-6)
    # no lengths: plain means of full windows
    full = torch.arange(12.0).reshape(1, 6, 2)
    np.testing.assert_array_equal(
        window_mean(full, None, 2)[0].numpy(), [[[1, 2], [5, 6], [9, 10]]]
    )
    assert window_mean(full, None, 2)[1] is None
    # a stride past the longest sequence: one window, each sequence's own mean, no padding
    # out to the stride (a saved stride of 10⁹ would allocate 10⁹ steps)
    out, new = window_mean(x, lengths, 10**9)
    assert out.shape == (4, 1, x.shape[-1]) and new is None
    for n, s in enumerate(seqs):
        np.testing.assert_allclose(out[n, 0].numpy(), s.mean(0), rtol=1e-6, atol=1e-6)


def test_patches_by_hand():
    rng = np.random.default_rng(1)
    seqs = _ragged(rng, [5, 2, 6])
    x, lengths = _padded(seqs, junk=-7.0)
    out, new = patches(x, lengths, 2)
    assert out.shape == (3, 3, 4) and new.tolist() == [3, 1, 3]
    for n, s in enumerate(seqs):
        alone = np.zeros((3 * 2, 2))
        alone[: len(s)] = s
        np.testing.assert_allclose(out[n].numpy(), alone.reshape(3, 4), rtol=1e-6)


def test_conv_branch_equals_torch_same_convolutions():
    torch.manual_seed(0)
    branch = ConvBranch(3, (5, 6, 4)).eval()
    for norm in branch.norms:  # non-trivial running statistics
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 17, 3)
    h = x.transpose(1, 2)
    for conv, norm in zip(branch.convs, branch.norms, strict=True):
        same = nn.Conv1d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            padding="same",
            dilation=conv.dilation,
        )
        same.load_state_dict(conv.state_dict())
        with (
            pytest.warns(UserWarning, match="zero-padded copy")
            if conv.kernel_size[0] % 2 == 0
            else _no_warning()
        ):
            h = torch.relu(norm(same(h)))
    torch.testing.assert_close(branch(x, None), h.mean(2), rtol=1e-5, atol=1e-6)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lstm_fcn_padding_never_leaks(cell):
    """In evaluation each sequence's output is the one it gets alone, with strides on
    both branches and junk in the padding."""
    torch.manual_seed(1)
    net = RecurrentNet(
        2,
        3,
        cell=cell,
        bidirectional=True,
        pooling="last+max+mean",
        rnn_stride=3,
        conv_filters=(4, 8, 4),
        conv_stride=2,
    ).eval()
    rng = np.random.default_rng(2)
    seqs = _ragged(rng, [20, 7, 13, 1, 2])
    x, lengths = _padded(seqs, junk=50.0)
    together = net(x, lengths)
    alone = torch.cat([net(x[n : n + 1, : len(s)]) for n, s in enumerate(seqs)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_per_step_outputs_refuse_the_convolutional_branch():
    with pytest.raises(ValueError, match="output='sequence' reads every step"):
        RecurrentNet(2, 3, output="sequence", conv_filters=(4, 4, 4))
    with pytest.raises(ValueError, match="a per-step output reads every step"):
        SequenceTagger(conv_filters=(4, 4, 4))
    assert SequenceTagger().params["conv_filters"] == []
    assert SequenceRegressor(output="sequence").params["rnn_steps"] is None
    assert SequenceRegressor().params["conv_filters"] == []  # measured on classes only
    assert SequenceClassifier().params["conv_filters"] == [64, 128, 64]
    assert SequenceClassifier().params["normalize"] == "sequence"
    assert SequenceRegressor().params["normalize"] == "global"


# -- the estimator's recipe ---------------------------------------------------------------


def _labelled(n=24, seed=3):
    rng = np.random.default_rng(seed)
    X = _ragged(rng, rng.integers(8, 30, n))
    y = np.array(["up" if s[:, 0].mean() > 0 else "down" for s in X])
    y[:2] = ["up", "down"]
    return X, y


def test_strides_and_budget_by_hand():
    assert stride_for([100, 300, 200], 64) == 4  # median 200 -> ceil(200/64)
    assert stride_for([10, 20], 64) == 1 and stride_for([500], None) == 1
    assert budget_epochs(50, 16) == 60  # 240 steps of 4 batches, but at least 60 epochs
    assert budget_epochs(200, 25) == 60
    assert budget_epochs(36, 16) == 80  # 3 batches an epoch
    assert budget_epochs(4, 16) == 240


def test_level_and_scale_by_hand_and_rounding_is_not_amplified():
    """μ/σ̃ and log(1 + σ/σ̃) by hand; on sequences already z-normalised (as in the UCR
    archive) both features vary only by rounding, and fit must not blow that up to O(1)
    inputs (it did: float32 and float64 runs then disagreed by 0.1 in probability)."""
    seqs = [np.array([[1.0], [3.0]]), np.array([[0.0], [8.0]])]
    np.testing.assert_allclose(
        level_and_scale(seqs, np.array([2.0])), [[1.0, math.log(1.5)], [2.0, math.log(3.0)]]
    )
    rng = np.random.default_rng(3)
    X = standardise_each([rng.normal(5.0, 3.0, size=(24, 1)) for _ in range(40)])
    y = np.arange(40) % 2
    model = SequenceClassifier(hidden_size=4, conv_filters=(3, 4, 3), epochs=1, progress=False)
    model.fit(X, y)
    extra = model._tensors(X)["extra"]
    assert extra.abs().max() < 1e-3, extra.abs().max()


def test_a_sequence_far_quieter_than_the_typical_one_is_scaled_by_the_floor():
    """σ_n below QUIET·σ̃ (an appliance switched off): (x − μ)/(QUIET·σ̃), not blown up to
    unit variance; a typical sequence, and every sequence with no floor (models saved
    before it), to unit variance as before."""
    rng = np.random.default_rng(5)
    loud = [rng.normal(0.0, 2.0, size=(30, 1)) for _ in range(20)]
    quiet = rng.normal(3.0, 2e-4, size=(30, 1))
    y = np.arange(21) % 2
    model = SequenceClassifier(hidden_size=4, conv_filters=(3, 4, 3), epochs=1, progress=False)
    model.fit([*loud, quiet], y)
    reference = model._fitted["scale_reference"][0]
    assert model._fitted["quiet_floor"] == QUIET
    got = model._prepare([quiet, loud[0]])
    np.testing.assert_allclose(got[0], (quiet - quiet.mean()) / (QUIET * reference))
    np.testing.assert_allclose(got[1], (loud[0] - loud[0].mean()) / loud[0].std())
    # by hand, per channel; a constant channel still becomes zeros
    seq = np.array([[1.0, 5.0], [3.0, 5.0]])  # σ = (1, 0)
    np.testing.assert_allclose(
        standardise_each([seq], np.array([4.0, 4.0]))[0], [[-0.25, 0], [0.25, 0]]
    )
    np.testing.assert_allclose(standardise_each([seq])[0], [[-1.0, 0], [1.0, 0]])
    del model._fitted["quiet_floor"]  # as saved before the floor: none
    np.testing.assert_allclose(model._prepare([quiet])[0].std(), 1.0)


def test_ensemble_members_are_the_single_models_and_average_probabilities():
    X, y = _labelled()
    kwargs = {"hidden_size": 4, "conv_filters": (3, 4, 3), "epochs": 3, "progress": False}
    ensemble = SequenceClassifier(n_models=2, seed=5, **kwargs).fit(X, y)
    first = SequenceClassifier(seed=5, **kwargs).fit(X, y)
    second = SequenceClassifier(seed=6, **kwargs).fit(X, y)
    assert isinstance(ensemble.net_, EnsembleNet) and not isinstance(first.net_, EnsembleNet)
    for member, single in zip(ensemble.net_.members, (first.net_, second.net_), strict=True):
        for (k, a), b in zip(
            member.state_dict().items(), single.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), k
    mean = (first.predict_proba(X) + second.predict_proba(X)) / 2
    np.testing.assert_allclose(ensemble.predict_proba(X), mean, rtol=1e-5, atol=1e-6)
    regressor = SequenceRegressor(n_models=3, **kwargs).fit(X, [len(s) for s in X])
    members = [
        SequenceRegressor(seed=k, **kwargs).fit(X, [len(s) for s in X]).predict(X) for k in range(3)
    ]
    np.testing.assert_allclose(regressor.predict(X), np.mean(members, 0), rtol=1e-5)


def test_a_classifier_restarts_only_while_it_underfits_its_training_data(monkeypatch):
    """Each one-cycle run is a call of the training loop: an unlearnable labelling (coin
    flips) keeps training accuracy below 0.99, so 1 + restarts runs of the same budget
    happen and the history holds all their epochs, numbered on; a separable one is fitted
    within the first run (it reaches accuracy 1) and never restarted."""
    import lstmkit.tasks.sequence as sequence

    calls = []
    real_fit = sequence.fit

    def counting(net, loss_fn, train, val, cfg, callback=None):
        calls.append(cfg)
        return real_fit(net, loss_fn, train, val, cfg, callback=callback)

    monkeypatch.setattr(sequence, "fit", counting)
    rng = np.random.default_rng(0)
    X = _ragged(rng, rng.integers(8, 12, 40))
    coins = rng.integers(0, 2, 40)
    kwargs = {"hidden_size": 4, "conv_filters": (), "epochs": 2, "progress": False}
    seen = []
    model = SequenceClassifier(restarts=2, **kwargs).fit(
        X, coins, callback=lambda record: seen.append(record["epoch"])
    )
    assert seen == [1, 2, 3, 4, 5, 6]  # a pruner sees the epochs numbered on too
    assert (model.predict(X) == coins).mean() < 0.99
    assert len(calls) == 3 and len({c.seed for c in calls}) == 3  # new batch orders
    assert [e["epoch"] for e in model.history_.epochs] == [1, 2, 3, 4, 5, 6]
    assert "restart 2: training accuracy" in model.history_.stop_reason
    calls.clear()
    SequenceClassifier(restarts=0, **kwargs).fit(X, coins)
    assert len(calls) == 1
    calls.clear()  # a run the callback stopped (a pruned trial) is not restarted
    SequenceClassifier(restarts=2, **kwargs).fit(X, coins, callback=lambda record: True)
    assert len(calls) == 1
    calls.clear()
    signs = np.array([int(s[:, 0].mean() > 0) for s in X])
    X = [s + (2.0 if c else -2.0) for s, c in zip(X, signs, strict=True)]  # far apart
    easy = SequenceClassifier(restarts=2, **{**kwargs, "epochs": 40}).fit(X, signs)
    assert (easy.predict(X) == signs).mean() >= 0.99 and len(calls) == 1
    calls.clear()
    SequenceRegressor(**kwargs).fit(X, coins.astype(float))  # no accuracy, no restarts
    assert len(calls) == 1
    with pytest.raises(ValueError, match="restarts: expected an int >= 0, got -1"):
        SequenceClassifier(restarts=-1)


def test_ensemble_save_load_round_trip(tmp_path):
    X, y = _labelled()
    model = SequenceClassifier(
        n_models=2,
        hidden_size=4,
        conv_filters=(3, 4, 3),
        rnn_steps=4,
        conv_steps=5,
        normalize="sequence",
        epochs=2,
        progress=False,
    ).fit(X, y)
    loaded = SequenceClassifier.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_augmentation_is_off_in_evaluation():
    X, y = _labelled()
    kwargs = {"hidden_size": 4, "conv_filters": (3, 4, 3), "epochs": 3, "progress": False}
    model = SequenceClassifier(augment=("jitter", "scale"), **kwargs).fit(X, y)
    first = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict_proba(X), first)  # no fresh noise
    batch = {"x": torch.ones(2, 5, 2), "lengths": torch.tensor([5, 3])}
    model.net_.eval()
    assert torch.equal(model._inputs(model.net_, batch), batch["x"])
    model.net_.train()
    assert not torch.equal(model._inputs(model.net_, batch), batch["x"])
    plain = SequenceClassifier(**kwargs).fit(X, y)
    assert not np.array_equal(plain.predict_proba(X), first)  # training did see the noise


def test_augmentations_by_their_definitions():
    torch.manual_seed(0)
    x = torch.ones(2000, 3, 2)
    jittered = augment_batch(x, ("jitter",)) - x
    assert abs(float(jittered.std()) - 0.03) < 0.002 and abs(float(jittered.mean())) < 0.002
    scaled = augment_batch(x, ("scale",))
    assert torch.equal(scaled[:, 0], scaled[:, 2])  # one factor per sequence and channel
    assert abs(float(scaled[:, 0].std()) - 0.1) < 0.01
    with pytest.raises(ValueError, match="augment: expected None or distinct names"):
        check_augment(("jitter", "warp"))


# -- the loop: one-cycle schedule and length buckets -----------------------------------------


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def _loss(model, batch):
    return nn.functional.mse_loss(model(batch["x"]), batch["y"]), len(batch["y"])


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 3, generator=g)
    return {"x": x, "y": x.sum(1)}


def test_onecycle_follows_torch_and_keeps_the_last_weights():
    lrs = []
    model = _Tiny()
    history = fit(
        model,
        _loss,
        _data(),
        None,
        TrainConfig(epochs=5, batch_size=8, lr=0.01, schedule="onecycle", patience=None),
        callback=lambda record: lrs.append(record["lr"]),
    )
    oracle = _Tiny()
    optimizer = torch.optim.AdamW(oracle.parameters(), lr=0.01, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.01, total_steps=5 * 4, pct_start=0.25
    )
    want = []
    for _epoch in range(5):
        for _batch in range(4):
            optimizer.step()
            schedule.step()
        want.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx(want, rel=1e-12)
    assert history.best_epoch == 4  # the last epoch's weights, whatever its loss


def test_onecycle_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(epochs=6, batch_size=8, schedule="onecycle", patience=None)
    full = _Tiny()
    fit(full, _loss, _data(), None, cfg)
    ckpt = str(tmp_path / "ckpt")
    part = _Tiny()
    stop = TrainConfig(epochs=6, batch_size=8, schedule="onecycle", patience=None, checkpoint=ckpt)
    fit(part, _loss, _data(), None, stop, callback=lambda record: record["epoch"] == 3)
    resumed = _Tiny()
    history = fit(
        resumed,
        _loss,
        _data(),
        None,
        TrainConfig(
            epochs=6,
            batch_size=8,
            schedule="onecycle",
            patience=None,
            checkpoint=ckpt,
            resume=True,
        ),
    )
    assert len(history.epochs) == 6
    for a, b in zip(resumed.parameters(), full.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule: expected one of plateau, onecycle"):
        TrainConfig(schedule="cosine")


def test_length_buckets_cover_every_sample_once_and_sort_within_buckets():
    lengths = torch.tensor(np.random.default_rng(4).integers(1, 500, 100))
    got = batches(100, 4, torch.Generator().manual_seed(0), lengths)
    flat = torch.cat(got)
    assert sorted(flat.tolist()) == list(range(100))
    assert all(len(b) <= 4 for b in got)
    for b in got:
        assert torch.equal(lengths[b], lengths[b].sort().values)
    # equal lengths: the plain seeded permutation, as before buckets existed
    same = batches(10, 3, torch.Generator().manual_seed(0), torch.full((10,), 5))
    plain = batches(10, 3, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(same, plain, strict=True))


def test_the_classifier_draws_random_batches_the_regressor_batches_of_like_lengths(monkeypatch):
    """Unequal lengths: the classifier's batches are the plain seeded permutation (length
    goes with the class on PLAID; docs/classification.md, "Random batches"), the regressor's
    and tagger's are sorted within length buckets."""
    import lstmkit.train.loop as loop

    seen = []
    real_batches = loop.batches

    def spy(n, batch_size, generator, lengths=None, equal_tokens=False):
        seen.append(lengths)
        return real_batches(n, batch_size, generator, lengths, equal_tokens)

    monkeypatch.setattr(loop, "batches", spy)
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(n), 1)) for n in rng.integers(5, 40, 24)]
    y = np.arange(24) % 2
    SequenceClassifier(epochs=1, progress=False, restarts=0).fit(X, y)
    assert seen and all(lengths is None for lengths in seen)
    seen.clear()
    SequenceRegressor(epochs=1, progress=False).fit(X, y.astype(float))
    assert seen and all(lengths is not None for lengths in seen)


def test_equal_token_batches_hold_about_a_random_batchs_steps():
    """equal_tokens: each sorted bucket is cut into consecutive batches whose padded size
    (count x longest) stays within batch_size x the mean length — checked against a
    brute-force walk of the sorted bucket; every sample once; short sequences in bigger
    batches; about as many batches as batch_size gives."""
    lengths = torch.tensor(np.random.default_rng(5).integers(5, 130, 300))
    got = batches(300, 8, torch.Generator().manual_seed(1), lengths, equal_tokens=True)
    assert sorted(torch.cat(got).tolist()) == list(range(300))
    budget = 8 * float(lengths.double().mean())
    for b in got:
        assert torch.equal(lengths[b], lengths[b].sort().values)
        assert len(b) == 1 or len(b) * int(lengths[b].max()) <= budget
    # the same buckets, cut greedily by hand: the same batches (in shuffled order)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(1))
    expected = []
    for bucket in order.split(8 * 8):  # BUCKET batches of 8
        sorted_bucket = bucket[torch.argsort(lengths[bucket], stable=True)].tolist()
        current = []
        for i in sorted_bucket:
            if current and (len(current) + 1) * int(lengths[i]) > budget:
                expected.append(current)
                current = []
            current.append(i)
        expected.append(current)
    assert sorted(map(tuple, expected)) == sorted(tuple(b.tolist()) for b in got)
    short = [len(b) for b in got if int(lengths[b].max()) < 30]
    long = [len(b) for b in got if int(lengths[b].min()) > 100]
    assert min(short) > 8 > max(long)
    assert 0.8 < len(got) / (300 / 8) < 1.4


def test_equal_tokens_needs_buckets_and_the_plateau_schedule():
    with pytest.raises(ValueError, match="equal_tokens: expected length_buckets=True"):
        TrainConfig(equal_tokens=True)
    with pytest.raises(ValueError, match="one-cycle schedule needs a fixed number"):
        TrainConfig(equal_tokens=True, length_buckets=True, schedule="onecycle")
    TrainConfig(equal_tokens=True, length_buckets=True)  # the poem writer's


# -- bad input: one line naming the problem -------------------------------------------------


def test_bad_input_gets_one_line():
    X, y = _labelled()
    with pytest.raises(ValueError, match="expected at least 2 examples of every class, got 1"):
        SequenceClassifier(progress=False).fit(X[:3], ["a", "a", "b"])
    with pytest.raises(ValueError, match="sequence 1: expected at least one step"):
        SequenceClassifier(progress=False).fit([X[0], np.zeros((0, 2)), X[2]], y[:3])
    bad = [s.copy() for s in X]
    bad[4][3, 1] = np.nan
    with pytest.raises(ValueError, match="sequence 4: expected finite values, got nan at step 3"):
        SequenceClassifier(progress=False).fit(bad, y)
    model = SequenceClassifier(hidden_size=4, conv_filters=(), epochs=1, progress=False)
    model.fit(X, y)
    with pytest.raises(ValueError, match="expected 2 channels \\(as in fit\\), got 3"):
        model.evaluate([np.zeros((5, 3))], ["up"])
    for kwargs, match in [
        ({"normalize": "minmax"}, "normalize: expected one of global, sequence"),
        ({"n_models": 0}, "n_models: expected an int >= 1"),
        ({"conv_filters": (8, 8)}, "conv_filters: expected 3 ints"),
        ({"rnn_steps": 0}, "rnn_steps: expected None or an int >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            SequenceClassifier(**kwargs)
