"""TextGenerator: corpus reading, the tang300 bar (perplexity well below unigram, lines of the
corpus's lengths), acrostic and opening constraints, persistence, bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.data import read_poems
from lstmkit.tasks import text
from lstmkit.tasks.text import TextGenerator, line_lengths

TANG300 = Path(__file__).resolve().parents[3] / "shared" / "data" / "tang300"
QUANTANGSHI = TANG300.parent / "quantangshi"

POEMS = [
    "白日依山盡，黃河入海流。",
    "紅豆生南國，春來發幾枝。",
    "春眠不覺曉，處處聞啼鳥。",
    "床前明月光，疑是地上霜。",
    "千山鳥飛絕，萬徑人蹤滅。",
    "國破山河在，城春草木深。",
] * 4


@pytest.fixture(scope="module")
def small():
    torch.set_num_threads(1)
    model = TextGenerator(
        hidden_size=32,
        embedding_size=16,
        num_layers=1,
        epochs=30,
        validation=0,
        patience=None,
        progress=False,
        lr=1e-2,
    )
    return model.fit(POEMS)


def test_read_poems_both_layouts(tmp_path):
    flat = tmp_path / "poet.json"
    flat.write_text(
        json.dumps(
            [{"paragraphs": ["白日依山盡，", "黃河入海流。"]}, {"paragraphs": ["□□□，", "缺字。"]}]
        ),
        "utf-8",
    )
    assert read_poems(flat) == ["白日依山盡，黃河入海流。"]  # editorial marks left out
    nested = tmp_path / "dir"
    nested.mkdir()
    (nested / "a.json").write_text(
        json.dumps(
            {
                "title": "t",
                "content": [
                    {
                        "type": "五言絕句",
                        "content": [{"paragraphs": ["紅豆生南國，", "春來發幾枝。"]}],
                    }
                ],
            }
        ),
        "utf-8",
    )
    assert read_poems(nested) == ["紅豆生南國，春來發幾枝。"]


@pytest.mark.skipif(not TANG300.is_dir(), reason="shared tang300 data not found")
def test_tang300_reads_the_corpus():
    poems = read_poems(TANG300 / "tangshisanbaishou.json")
    raw = json.loads((TANG300 / "tangshisanbaishou.json").read_text("utf-8"))
    total = sum(len(group["content"]) for group in raw["content"])
    assert total == 320
    assert 250 <= len(poems) <= 320
    assert "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。" in poems


@pytest.mark.skipif(not QUANTANGSHI.is_dir(), reason="shared quantangshi data not found")
def test_quantangshi_directory_reads_every_json_file():
    """The full corpus as a directory: every poet.tang.*.json, nothing else (LICENSE)."""
    poems = read_poems(QUANTANGSHI)
    files = sorted(QUANTANGSHI.glob("*.json"))
    assert len(files) == 58
    raw = sum(len(json.loads(f.read_text("utf-8"))) for f in files)
    assert raw == 57607
    assert poems == [p for f in files for p in read_poems(f)]
    assert 50_000 <= len(poems) < raw  # poems with editorial marks are left out


@pytest.mark.skipif(not TANG300.is_dir(), reason="shared tang300 data not found")
def test_tang300_default_model_beats_unigram_and_writes_regular_lines():
    poems = read_poems(TANG300 / "tangshisanbaishou.json")
    model = TextGenerator(progress=False).fit(poems)
    pp = model.perplexity(model.validation_poems_)
    assert pp["model"] <= 0.75 * pp["unigram"], pp
    lines = [n for seed in range(20) for n in line_lengths(model.generate(seed=seed))]
    regular = sum(n in (5, 7) for n in lines) / len(lines)
    assert regular >= 0.6, (regular, lines)


def test_read_poems_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    with pytest.raises(ValueError, match="expected JSON"):
        read_poems(bad)
    with pytest.raises(ValueError, match="no such path"):
        read_poems(tmp_path / "missing.json")


def test_perplexity_in_batches_is_the_mean_log_loss_of_every_character(small, monkeypatch):
    """Scored two poems at a time, the perplexity is exp of the mean negative log
    probability of every real character, each poem run alone through the network (oracle)."""
    monkeypatch.setattr(text, "PERPLEXITY_BATCH", 2)
    small.net_.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for poem in POEMS:
            data = small._encode([poem])
            logp = torch.log_softmax(small.net_(data["tokens"])[0][0], -1)
            total -= float(logp.gather(1, data["targets"][0][:, None]).sum())
            count += data["targets"].shape[1]
    assert small.perplexity(POEMS)["model"] == pytest.approx(math.exp(total / count), rel=1e-5)


def test_line_lengths():
    assert line_lengths("白日依山盡，黃河入海流。") == [5, 5]
    assert line_lengths("^春眠不覺曉，處處聞啼鳥。$") == [5, 5]


def test_learns_the_tiny_corpus_far_below_unigram(small):
    pp = small.perplexity(POEMS)
    counts = {}
    for p in POEMS:
        for ch in [*p, "$"]:
            counts[ch] = counts.get(ch, 0) + 1
    vocab = len(small._vocab)
    total = sum(counts.values())
    unigram = math.exp(
        -sum(n * math.log((n + 1) / (total + vocab)) for n in counts.values()) / total
    )
    assert pp["unigram"] == pytest.approx(unigram, rel=1e-6)  # the baseline is what it says
    assert pp["model"] < 0.25 * pp["unigram"]


def test_acrostic_and_opening(small):
    poem = small.generate(acrostic="白紅春", seed=3)
    lines = [line for line in poem.replace("。", "，").split("，") if line]
    assert [line[0] for line in lines[:3]] == ["白", "紅", "春"]
    assert small.generate(opening="床前", seed=1).startswith("床前")


def test_same_seed_same_poem_and_round_trip(small, tmp_path):
    assert small.generate(seed=5) == small.generate(seed=5)
    loaded = TextGenerator.load(small.save(tmp_path / "poet"))
    assert loaded.generate(seed=5) == small.generate(seed=5)
    np.testing.assert_allclose(loaded.perplexity(POEMS)["model"], small.perplexity(POEMS)["model"])


def test_generate_errors(small):
    with pytest.raises(ValueError, match="unseen 'Z'"):
        small.generate(opening="Z")
    with pytest.raises(ValueError, match="temperature: expected a positive number"):
        small.generate(temperature=0)
    with pytest.raises(ValueError, match="expected one of them, got both"):
        small.generate(opening="白", acrostic="紅")
    with pytest.raises(TypeError, match="poems: expected a list of strings"):
        TextGenerator().fit("白日依山盡")


def test_training_logits_on_the_real_steps_are_the_full_logits_masked(small):
    """The loss's head runs on the real steps only: the same logits as the head on every
    padded step, then masked (evaluation mode: no dropout), and the same loss."""
    from lstmkit.recurrence.lengths import real_steps
    from lstmkit.tasks.text import _loss

    net = small.net_.eval()
    batch = small._encode(["白日依山盡", "春眠不覺曉，處處聞啼鳥。"])
    steps = int(batch["lengths"].max())
    mask = real_steps(batch["lengths"], steps)
    with torch.no_grad():
        full, _ = net(batch["tokens"][:, :steps], batch["lengths"])
        real, _ = net(batch["tokens"][:, :steps], batch["lengths"], mask=mask)
        loss, count = _loss(net, batch)
    torch.testing.assert_close(real, full[mask])  # float32: the same rows, any blocking
    targets = batch["targets"][:, :steps][mask]
    assert count == int(batch["lengths"].sum())
    assert float(loss) == pytest.approx(
        float(torch.nn.functional.cross_entropy(full[mask], targets))
    )


def test_batching_random_by_default_equal_tokens_on_request(monkeypatch):
    """The default draws batch_size poems at random (the batches see no lengths); with
    batching="equal_tokens" they are cut from length-sorted buckets with equal_tokens on;
    anything else is refused by name."""
    import lstmkit.train.loop as loop

    seen = []
    real_batches = loop.batches

    def spy(n, batch_size, generator, lengths=None, equal_tokens=False):
        if generator is not None:  # the training batches (evaluation goes in order)
            seen.append((lengths is not None, equal_tokens))
        return real_batches(n, batch_size, generator, lengths, equal_tokens)

    monkeypatch.setattr(loop, "batches", spy)
    poems = ["床前明月光疑是地上霜", "春眠不觉晓", "白日依山尽黄河入海流", "红豆生南国"] * 4
    TextGenerator(epochs=1, hidden_size=8, num_layers=1, progress=False).fit(poems)
    assert seen and set(seen) == {(False, False)}
    seen.clear()
    model = TextGenerator(
        epochs=1, hidden_size=8, num_layers=1, progress=False, batching="equal_tokens"
    )
    model.fit(poems)
    assert seen and set(seen) == {(True, True)}
    with pytest.raises(ValueError, match="batching: expected one of 'random', 'equal_tokens'"):
        TextGenerator(batching="buckets")
