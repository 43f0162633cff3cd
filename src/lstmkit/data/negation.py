"""A generated sentiment set built around negation (source 001: "I do not love him").

Each sentence is subject + optional negation + optional adverb + verb + object, e.g.
"i do not really love him" (negative) or "they hate the food" (negative). The label is the
verb's polarity, flipped by the negation: label = positive(verb) XOR negated. The set is
balanced so that every word on its own is uncorrelated with the label — a bag-of-words
model can only guess (about 0.5 accuracy), while a model that reads the order ("not"
before the verb) can be exact. Generated with a seeded numpy Generator; no licence issue.
"""

import numpy as np

SUBJECTS = ("i", "you", "we", "they", "she", "he", "my friends", "the critics")
POSITIVE = ("love", "like", "enjoy", "adore", "admire", "praise")
NEGATIVE = ("hate", "dislike", "despise", "loathe", "detest", "resent")
NEGATIONS = ("do not", "never", "no longer", "cannot")
ADVERBS = ("", "really", "truly", "always")
OBJECTS = (
    "him",
    "her",
    "it",
    "them",
    "this film",
    "the food",
    "the music",
    "that book",
    "the city",
    "their plan",
)
DISTRACTORS = ("", "today", "at all", "anymore", "very much")


def negation_sentiment(n: int = 2000, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` sentences and labels (1 positive, 0 negative), balanced over verb polarity x
    negation (n is rounded down to a multiple of 4)."""
    if n < 4:
        raise ValueError(f"n: expected at least 4 sentences, got {n}")
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    per_cell = n // 4
    for positive in (True, False):
        for negated in (False, True):
            verbs = POSITIVE if positive else NEGATIVE
            for _ in range(per_cell):
                words = [rng.choice(SUBJECTS)]
                if negated:
                    words.append(rng.choice(NEGATIONS))
                words += [rng.choice(pool) for pool in (ADVERBS, verbs, OBJECTS, DISTRACTORS)]
                sentences.append(" ".join(w for w in words if w))
                labels.append(int(positive != negated))
    order = rng.permutation(len(sentences))
    return [sentences[i] for i in order], np.array(labels)[order]


def one_hot_words(sentences, vocabulary: list[str] | None = None):
    """Sentences as one-hot word sequences: (list of (T_i, V) float arrays, vocabulary).
    Words outside a given vocabulary map to an ``<unk>`` column (always the last)."""
    tokens = [s.split() for s in sentences]
    if vocabulary is None:
        vocabulary = [*sorted({w for t in tokens for w in t}), "<unk>"]
    index = {w: i for i, w in enumerate(vocabulary)}
    unknown = index.get("<unk>", len(vocabulary) - 1)
    out = []
    for n, words in enumerate(tokens):
        if not words:
            raise ValueError(f"sentences[{n}]: expected at least one word, got an empty sentence")
        seq = np.zeros((len(words), len(vocabulary)))
        seq[np.arange(len(words)), [index.get(w, unknown) for w in words]] = 1.0
        out.append(seq)
    return out, vocabulary
