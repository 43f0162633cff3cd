"""Damaged or absurd data refused on entry with a ValueError naming it (issue 14): the
inputs an adversarial run found ending in an internal error (exit 1), a hang, gigabytes,
or a trained model full of NaN. Oracle: the input crafted by hand (a header that lies about
its size, JSON nested 100,000 deep, values of 1e308) and what the reader may do with it —
raise ValueError, never allocate what the header claims, never run past a bound.
"""

import time
import zipfile

import numpy as np
import pytest

from lstmkit.data import read_csv, read_npz, read_poems
from lstmkit.data.frame import MAX_MAGNITUDE
from lstmkit.data.sequences import as_sequences
from lstmkit.tasks import Forecaster, SequenceClassifier, SequenceRegressor
from lstmkit.tasks.global_forecast import check_quantiles


def _npy(shape, data: bytes = b"\0" * 16) -> bytes:
    """A version 1.0 .npy file: its header declares ``shape`` of float64, then ``data``."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


@pytest.mark.parametrize("shape", [(10**12,), (10**6, 10**6), (3, 4)])
def test_an_npy_header_that_claims_more_than_the_member_holds(tmp_path, shape):
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", _npy(shape))  # 16 bytes of data: 2 float64 values
    with pytest.raises(ValueError, match=r"X: expected a .npy array, got a header declaring"):
        read_npz(path)


def test_an_npz_member_over_a_quarter_of_the_budget_is_not_decompressed(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez_compressed(path, X=np.zeros((100, 50, 2)))  # 80 kB raw, a few hundred bytes packed
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", "100000")
    with pytest.raises(ValueError, match=r"X: expected at most 25,000 bytes uncompressed"):
        read_npz(path)
    monkeypatch.delenv("LSTMKIT_MEMORY_BUDGET")
    assert read_npz(path)[0].shape == (100, 50, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ('[{"paragraphs": [1, 2]}]', "'paragraphs' list of strings"),
        ('{"content": [{"content": [1, 2]}]}', "'paragraphs' list of strings"),
        ('{"content": [1, 2]}', "'content' groups with a 'content' list"),
        ('{"content": [{"content": 5}]}', "'content' groups with a 'content' list"),
    ],
)
def test_poem_json_of_the_wrong_shape(tmp_path, content, message):
    (tmp_path / "poems.json").write_text(content)
    with pytest.raises(ValueError, match=message) as refused:
        read_poems(tmp_path / "poems.json")
    assert str(refused.value).count("poems.json") == 1  # the file named once, at the start


def test_a_saved_config_nested_too_deeply(tmp_path):
    Forecaster(lookback=4, horizon=2, hidden_size=3, epochs=1, progress=False).fit(
        np.sin(np.arange(40.0))
    ).save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"config.json: expected JSON, got values nested too"):
        Forecaster.load(tmp_path / "m")


def test_a_csv_of_a_hundred_thousand_columns_is_read_without_a_quadratic_scan(tmp_path):
    """The duplicate-name check and the column lookup scanned the header once per column
    (over 60 s here); a bound far above the linear time catches the scan coming back."""
    width = 100_000
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(width)) + "\n" + ",".join(["1"] * width) + "\n")
    began = time.perf_counter()
    frame = read_csv(path)
    assert time.perf_counter() - began < 20
    assert frame.values.shape == (1, width)
    path.write_text(",".join(f"c{i % 50_000}" for i in range(width)) + "\n" + "1," * 99_999 + "1")
    with pytest.raises(ValueError, match=r"duplicate column name 'c0' \(columns 1 and 50001\)"):
        read_csv(path)


BIG = 1e308


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        (
            lambda: Forecaster(epochs=1).fit(np.r_[np.arange(40.0), BIG]),
            r"series, row 40: expected values of magnitude at most 1e\+30",
        ),
        (
            lambda: Forecaster(epochs=1).fit({"a": np.arange(30.0), "b": np.full(30, -1e200)}),
            r"series 'b', position 0: expected values of magnitude at most 1e\+30",
        ),
        (
            lambda: SequenceClassifier(epochs=1).fit(np.full((4, 5, 1), 1e300), [0, 1, 0, 1]),
            r"sequence 0, step 0, feature 0: expected values of magnitude",
        ),
        (
            lambda: SequenceRegressor(epochs=1).fit(np.ones((4, 5, 1)), [0.0, np.nan, 1, 2]),
            r"y\[1\]: expected finite targets, got nan",
        ),
        (
            lambda: SequenceRegressor(epochs=1).fit(np.ones((4, 5, 1)), [0.0, 1, np.inf, 2]),
            r"y\[2\]: expected finite targets, got inf",
        ),
        (
            lambda: SequenceRegressor(epochs=1).fit(np.ones((4, 5, 1)), [0.0, 1, 2, BIG]),
            r"y\[3\]: expected values of magnitude at most 1e\+30",
        ),
    ],
)
def test_values_too_large_for_float32_training_are_refused_before_it(fit, message):
    with pytest.raises(ValueError, match=message):
        fit()


def test_the_magnitude_bound_is_inclusive():
    seqs = as_sequences(np.array([[[MAX_MAGNITUDE], [-MAX_MAGNITUDE]]]))
    assert seqs[0].max() == MAX_MAGNITUDE
    with pytest.raises(ValueError, match=r"sequence 0, step 1, feature 0"):
        as_sequences(np.array([[[1.0], [-MAX_MAGNITUDE * 1.01]]]))


def test_at_most_99_quantile_levels():
    every = [k / 100 for k in range(1, 100)]
    assert len(check_quantiles(every)) == 99
    with pytest.raises(ValueError, match=r"expected at most 99 levels, got 100"):
        check_quantiles([*every, 0.995])


def test_interpolating_between_huge_values_stays_finite(tmp_path):
    """np.interp's slope between ±1.7e308 overflowed to -inf (found by the fuzz harness);
    the midpoint of the two is 0."""
    from lstmkit.data import read_ts

    path = tmp_path / "huge.ts"
    path.write_text("@univariate true\n@equalLength true\n@data\n1.7e308,?,-1.7e308\n")
    X = read_ts(path, missing="interpolate")[0]
    np.testing.assert_allclose(np.asarray(X).reshape(-1), [1.7e308, 0.0, -1.7e308], atol=1e293)


@pytest.mark.parametrize(
    ("name", "content", "keeps"),
    [
        ("long.ts", "@problemName x\n@timeStamps false\n@univariate true\n@classLabel true up "
         "down\n@data\n1,2,3:" + "9" * 5000 + "\n", "expected one of up, down"),
        ("long.csv", "x" * 1000 + "\n1e309\n", "expected a finite number, got '1e309'"),
        ("long.tsf", "@attribute series_name string\n@frequency yearly\n@horizon "
         + "9" * 5000 + "\n@missing false\n@equallength false\n@data\nT1:1,2,3\n",
         "@horizon: expected a positive integer"),
    ],
)  # fmt: skip
def test_a_long_value_is_quoted_short_in_a_reader_error(tmp_path, name, content, keeps):
    """A file's 1,000- or 5,000-character token is cut in the message, which still says
    where and what was expected (oracle: the message itself)."""
    from lstmkit.data import read_ts, read_tsf

    path = tmp_path / name
    path.write_text(content)
    read = {".ts": read_ts, ".csv": read_csv, ".tsf": read_tsf}[path.suffix]
    with pytest.raises(ValueError) as err:
        read(path)
    message = str(err.value).replace(str(path), "")
    assert keeps in message and "..." in message and len(message) < 200, message


@pytest.mark.parametrize("version", [1, 3])
def test_an_npy_header_with_a_dimension_past_int64_is_refused(tmp_path, version):
    """Versions 2.0 and 3.0 of the .npy format store the header's length in 4 bytes."""
    member = _npy((0, 2**64), b"")  # 0 elements: no size to refuse
    if version == 3:
        header = member[10:]
        member = b"\x93NUMPY\x03\x00" + len(header).to_bytes(4, "little") + header
    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X", member)  # numpy reads a member without the .npy suffix too
    with pytest.raises(ValueError, match=r"X: expected a .npy shape of integers, got \(0, 1844"):
        read_npz(path)
