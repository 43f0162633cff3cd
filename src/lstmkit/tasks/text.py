r"""Writing poems with an LSTM: a character-level language model (source 003's exercise).

Each poem becomes ``^`` + its characters + ``$`` (start and end marks). The network is an
embedding, a stacked LSTM or GRU and a softmax over the characters,
:math:`p(c_{t+1} \mid c_{\le t}) = \mathrm{softmax}(W h_t + b)`, trained by BPTT on the
next-character cross-entropy of the real characters only (padding has no loss: the
engine's ``lengths``). Quality is the validation perplexity
:math:`\exp(-\frac1N \sum \log p(c_{t+1} \mid c_{\le t}))` on held-out poems, reported
beside the perplexity of the unigram model (character frequencies of the training poems,
add-one smoothed) — the bar a model that ignores order would reach. Characters seen fewer
than ``min_count`` times in training, and unseen ones, share one ``<unk>`` class in both
models, so the two are scored over the same vocabulary; ``<unk>`` is never generated.

Batches are ``batch_size`` poems drawn at random (``batching="random"``, the default), or
poems of like lengths, about ``batch_size`` × the mean poem length characters each
(``batching="equal_tokens"``: short poems in bigger batches,
:func:`lstmkit.train.loop.batches`), which pads less and trains 1.3× the characters per
second but learned less per epoch on the Tang corpus (docs/benchmarks.md, "Poem writing").

Generation samples one character at a time with ``temperature`` and ``top_k``, from an
optional opening line, or as an acrostic (藏头诗): each line starts with the given
character, lines ending at "，" or "。".
"""

import math
import re
from collections import Counter

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from lstmkit.budget import check_training_memory, recurrent_parameters
from lstmkit.checks import is_int
from lstmkit.messages import shown
from lstmkit.recurrence.lengths import real_steps
from lstmkit.tasks.networks import CELLS, check_cell, check_cell_options
from lstmkit.tasks.persist import saved_numbers
from lstmkit.tasks.protocol import Estimator, constructor_params
from lstmkit.train.loop import TrainConfig, evaluate_loss, fit, seed_torch
from lstmkit.train.threads import stepping_threads

BOS, EOS, PAD, UNK = "^", "$", "\0", "\x01"
BATCHING = ("random", "equal_tokens")
LINE_ENDS = "，。！？；"


def line_lengths(poem: str) -> list[int]:
    """Lengths of the lines of a poem, lines ending at ，。！？；."""
    lines = re.split(f"[{LINE_ENDS}]", poem.replace(BOS, "").replace(EOS, ""))
    return [len(line) for line in lines[:-1]]  # the text after the last mark ends no line


class _CharNet(nn.Module):
    def __init__(
        self,
        vocab: int,
        embed: int,
        hidden: int,
        layers: int,
        cell: str,
        dropout: float,
        cell_options: dict,
    ) -> None:
        super().__init__()
        check_training_memory(
            recurrent_parameters(cell, embed, hidden, layers, 1) + (embed + hidden + 1) * vocab,
            f"hidden_size={hidden}, num_layers={layers}",
        )
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = CELLS[cell](
            embed,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            **cell_options,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None, state=None, mask=None):
        """Logits (N, T, vocab) and the state; with ``mask`` (N, T) the logits of the
        marked steps only, (number marked, vocab): the vocabulary's matrix product is half
        of training's work, and padding needs none of it."""
        out, state = self.rnn(self.embed(tokens), state, lengths=lengths)
        return self.head(self.drop(out if mask is None else out[mask])), state

    def step(self, tokens: Tensor, state):
        """Logits (N, vocab) of the characters after ``tokens`` (N,) and the new state, in
        evaluation mode: one step of the recurrent network (``LSTM.step``/``GRU.step``)."""
        out, state = self.rnn.step(self.embed(tokens), state)
        return self.head(out), state


PERPLEXITY_BATCH = 256  # poems scored at once by perplexity


class TextGenerator(Estimator):
    """Character-level LSTM/GRU language model for poems.

    ``fit(poems)`` takes a list of strings (see :func:`lstmkit.data.read_poems`); ``generate(...)``
    writes one poem; ``perplexity(poems)`` scores held-out text.

    ``cell_options`` asks for cell variants (``docs/variants.md``), e.g.
    ``{"layer_norm": True, "zoneout": 0.1}``; the keys are checked against the cell.
    """

    _kind = "TextGenerator"
    _fit_call = "fit(poems)"

    def __init__(
        self,
        *,
        cell: str = "lstm",
        num_layers: int = 2,
        hidden_size: int = 256,
        embedding_size: int = 64,
        dropout: float = 0.5,
        max_length: int = 128,
        min_count: int = 2,
        epochs: int = 30,
        batch_size: int = 32,
        batching: str = "random",
        lr: float = 3e-3,
        patience: int | None = 8,
        validation: float = 0.1,
        seed: int = 0,
        progress: bool | None = None,
        checkpoint: str | None = None,
        resume: bool = False,
        cell_options: dict | None = None,
    ) -> None:
        check_cell(cell)
        _check_max_length(max_length)
        if batching not in BATCHING:
            raise ValueError(
                f"batching: expected one of {', '.join(map(repr, BATCHING))}, got {shown(batching)}"
            )
        self.params = constructor_params(
            TextGenerator.__init__, locals(), cell_options=check_cell_options(cell, cell_options)
        )
        # random batches by default: validation perplexity after one epoch of the Tang corpus,
        # three seeds, 267.1 against equal_tokens' 284.2 (docs/benchmarks.md, "Poem writing")
        buckets = batching == "equal_tokens"
        self._train_cfg = TrainConfig.from_params(
            self.params,
            length_buckets=buckets,
            equal_tokens=buckets,
            progress=progress,
            checkpoint=checkpoint,
            resume=resume,
        )
        self.net_: _CharNet | None = None
        self.history_ = None

    def _encode(self, poems: list[str]) -> dict[str, Tensor]:
        """Padded token ids: inputs ^c1..cn, targets c1..cn$ (clipped to max_length)."""
        limit = self.params["max_length"]
        ids = [
            [
                self._index[BOS],
                *[self._index.get(c, self._unknown) for c in p][: limit - 1],
                self._index[EOS],
            ]
            for p in poems
        ]
        return {  # padded with zeros: PAD's id
            "tokens": pad_sequence([torch.tensor(s[:-1]) for s in ids], batch_first=True),
            "targets": pad_sequence([torch.tensor(s[1:]) for s in ids], batch_first=True),
            "lengths": torch.tensor([len(s) - 1 for s in ids]),
        }

    def fit(self, poems, *, validation_poems=None, callback=None):
        """Train on ``poems`` (strings); the validation part is a seeded share of them
        unless ``validation_poems`` are given."""
        poems = _check_poems(poems)
        rng = np.random.default_rng(self.params["seed"])
        if validation_poems is None:
            order = rng.permutation(len(poems))
            cut = round(len(poems) * self.params["validation"])
            validation_poems = [poems[i] for i in order[:cut]]
            poems = [poems[i] for i in order[cut:]]
        counts = Counter("".join(poems))
        chars = sorted(
            c
            for c, n in counts.items()
            if n >= self.params["min_count"] and c not in (BOS, EOS, PAD, UNK)
        )
        self._vocab = [PAD, BOS, EOS, UNK, *chars]
        self._setup_vocab()
        train = self._encode(poems)
        real = train["targets"][real_steps(train["lengths"], train["targets"].shape[1])]
        counts = np.bincount(real.numpy(), minlength=len(self._vocab))
        self._unigram = ((counts + 1) / (counts.sum() + len(counts))).tolist()
        seed_torch(self.params["seed"])
        self.net_ = self._build()
        val = self._encode(validation_poems) if validation_poems else None
        self.history_ = fit(self.net_, _loss, train, val, self._train_cfg, callback=callback)
        self.validation_poems_ = list(validation_poems)
        return self

    def _setup_vocab(self) -> None:
        self._index = {c: i for i, c in enumerate(self._vocab)}
        self._unknown = self._index[UNK]  # rare and unseen characters: one class, never sampled

    def _build(self) -> _CharNet:
        p = self.params
        return _CharNet(
            len(self._vocab),
            p["embedding_size"],
            p["hidden_size"],
            p["num_layers"],
            p["cell"],
            p["dropout"],
            p["cell_options"],
        )

    def perplexity(self, poems) -> dict[str, float]:
        """{"model": perplexity of the network, "unigram": of the unigram baseline} on poems."""
        self._check_fitted()
        data = self._encode(_check_poems(poems))
        # batch by batch: the logits of thousands of poems at once are (poems × steps ×
        # vocabulary) numbers — 24 GB resident for the Tang corpus's 5,200 validation poems
        nll = evaluate_loss(self.net_, _loss, data, PERPLEXITY_BATCH)
        targets = data["targets"][real_steps(data["lengths"], data["targets"].shape[1])]
        unigram = -torch.log(torch.tensor(self._unigram, dtype=torch.float64))[targets].mean()
        return {"model": math.exp(nll), "unigram": math.exp(float(unigram))}

    @torch.no_grad()
    def generate(
        self,
        *,
        opening: str = "",
        acrostic: str = "",
        temperature: float = 0.8,
        top_k: int | None = 20,
        seed: int | None = None,
        max_length: int | None = None,
    ) -> str:
        """Write one poem. ``opening``: text it starts with; ``acrostic``: characters that
        begin each line in turn (the poem then has that many lines)."""
        self._check_fitted()
        if not temperature > 0:
            raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k: expected None or an int >= 1, got {top_k!r}")
        if max_length is not None:
            _check_max_length(max_length)
        if opening and acrostic:
            raise ValueError("opening and acrostic: expected one of them, got both")
        unknown = sorted(set(opening + acrostic) - set(self._vocab[4:]))
        if unknown:
            raise ValueError(
                f"expected characters seen in training, got unseen {''.join(unknown)!r}"
            )
        limit = max_length or self.params["max_length"]
        gen = torch.Generator().manual_seed(self.params["seed"] if seed is None else seed)
        self.net_.eval()
        heads = list(acrostic)
        prompt = BOS + (heads.pop(0) if heads else opening)
        with stepping_threads():
            return self._write(prompt, heads, bool(acrostic), limit, temperature, top_k, gen)

    def _write(self, prompt, heads, acrostic, limit, temperature, top_k, gen) -> str:
        """The sampling loop of :meth:`generate`."""
        logits, state = self._feed(prompt, None)
        text = prompt[1:]
        while len(text) < limit:
            ch = self._sample(logits, temperature, top_k, gen)
            if ch == EOS:
                break
            text += ch
            if ch in LINE_ENDS and acrostic:
                if not heads:
                    break
                text += heads.pop(0)
                ch = text[-2:]  # the mark and the head
            logits, state = self._feed(ch, state)
        return text

    def _feed(self, chars: str, state):
        """Run characters through the network from ``state``; return next-char logits.
        One character after the first goes through the cells once (``step``): a whole
        forward call per character cost milliseconds in kernel set-up alone."""
        ids = torch.tensor([[self._index[c] for c in chars]])
        if state is not None and len(chars) == 1:
            logits, state = self.net_.step(ids[:, 0], state)
            return logits[0], state
        logits, state = self.net_(ids, state=state)
        return logits[0, -1], state

    def _sample(self, logits: Tensor, temperature: float, top_k, gen) -> str:
        logits = logits.clone()
        logits[[self._index[c] for c in (PAD, BOS, UNK)]] = -math.inf  # never sampled
        logits = logits / temperature
        if top_k is not None and top_k < logits.numel():
            cutoff = torch.topk(logits, top_k).values[-1]
            logits[logits < cutoff] = -math.inf
        index = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
        return self._vocab[int(index)]

    def _saved(self) -> tuple[dict, dict, dict]:
        fitted = {"vocab": self._vocab, "unigram": self._unigram}
        return self.params, fitted, self.net_.state_dict()

    def _restore(self, fitted: dict) -> _CharNet:
        vocab = fitted.get("vocab")
        if (
            not isinstance(vocab, list)
            or vocab[:4] != [PAD, BOS, EOS, UNK]
            or not all(isinstance(c, str) and len(c) == 1 for c in vocab)
            or len(set(vocab)) != len(vocab)
        ):
            raise ValueError(
                f"vocab: expected distinct characters after {[PAD, BOS, EOS, UNK]}, "
                f"got {shown(vocab)}"
            )
        saved_numbers(fitted, "unigram", (len(vocab),), positive=True)
        self._vocab, self._unigram = vocab, fitted["unigram"]
        self._setup_vocab()
        return self._build()


MAX_LENGTH = 100_000  # characters of a training poem kept, or of a poem written


def _check_max_length(value) -> None:
    if not is_int(value) or not 1 <= value <= MAX_LENGTH:
        raise ValueError(f"max_length: expected an int in [1, {MAX_LENGTH:,}], got {shown(value)}")


def _check_poems(poems) -> list[str]:
    if isinstance(poems, str) or not all(isinstance(p, str) for p in poems):
        raise TypeError("poems: expected a list of strings")
    poems = [p for p in poems if p]
    if not poems:
        raise ValueError("poems: expected at least one non-empty poem, got none")
    return poems


def _loss(net: _CharNet, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
    lengths = batch["lengths"]
    steps = int(lengths.max())
    mask = real_steps(lengths, steps)
    logits, _ = net(batch["tokens"][:, :steps], lengths, mask=mask)
    targets = batch["targets"][:, :steps][mask]
    return nn.functional.cross_entropy(logits, targets), int(mask.sum())
