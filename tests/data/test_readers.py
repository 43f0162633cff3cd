"""Readers and built-in datasets: real files, malformed files, missing values, round trips.

Oracles: facts about the shared data counted here independently with plain line splitting
(not through the readers); hand-computed arrays for the missing-value policies; exact
round trips through small writers in this file (floats written with ``repr``); plain
Python forward-fill and interpolation loops; the documented error contract ("file, line,
column: expected ..., got ..."). Fuzzing: any bytes or text either read or raise
``ValueError``.
"""

import csv
import os
import re
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmkit.data import (
    TimeSeriesFrame,
    as_frame,
    as_sequences,
    load_dataset,
    read_csv,
    read_npz,
    read_ts,
)

DATA = Path(__file__).parents[3] / "shared" / "data" / "timeseries"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared time-series data not found at {DATA}"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def at(path: Path, rest: str = "") -> str:
    """``match`` pattern for an error message that starts with ``path`` then ``rest``."""
    return "^" + re.escape(str(path)) + rest


def ts_cases(path: Path) -> list[tuple[list[list[float]], str]]:
    """Independent .ts parse: the lines after @data split at ':' and ','."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data")
    cases = []
    for line in lines[start + 1 :]:
        if line.strip():
            *dims, label = line.strip().split(":")
            cases.append(([[float(v) for v in d.split(",")] for d in dims], label))
    return cases


# -- real data --------------------------------------------------------------------------


@needs_data
def test_airline_csv():
    frame = read_csv(DATA / "Airline" / "Airline.csv")
    assert frame.columns == ("Passengers",)
    assert frame.values.shape == (144, 1) and frame.values.dtype == np.float64
    assert frame.values[0, 0] == 112 and frame.values[-1, 0] == 432
    assert frame.time[0] == "1949-01" and frame.time[-1] == "1960-12"
    assert len(frame) == 144
    # the copy shipped in the package is the same series
    builtin = load_dataset("airline")
    np.testing.assert_array_equal(builtin.values, frame.values)
    assert builtin.time == frame.time


@needs_data
def test_uschange_csv():
    path = DATA / "Uschange" / "Uschange.csv"
    frame = read_csv(path)
    # the unnamed leading column is pandas' row index; 'Quarter' holds the time labels
    assert frame.columns == ("Consumption", "Income", "Production", "Savings", "Unemployment")
    assert frame.values.shape == (187, 5)
    assert frame.time[0] == "1970 Q1" and frame.time[-1] == "2016 Q3"
    assert frame.values[0].tolist() == [
        0.615986218,
        0.9722610429999999,
        -2.4527003119999997,
        4.810311502,
        0.9,
    ]
    assert frame.values[-1].tolist() == [
        0.729597795,
        0.6447008089999999,
        0.47491844,
        -0.572857926,
        0.0,
    ]
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    want = np.array([[float(v) for v in row[2:]] for row in rows])
    np.testing.assert_array_equal(frame.values, want)
    np.testing.assert_array_equal(frame.column("Savings"), want[:, 3])
    np.testing.assert_array_equal(frame.select(["Savings", "Income"]), want[:, [3, 1]])
    picked = read_csv(path, columns=["Unemployment", "Consumption"])
    assert picked.columns == ("Unemployment", "Consumption")
    np.testing.assert_array_equal(picked.values, want[:, [4, 0]])


@needs_data
@pytest.mark.parametrize(
    ("name", "n", "d", "t", "counts"),
    [
        (
            "BasicMotions",
            40,
            6,
            100,
            {"Standing": 10, "Running": 10, "Walking": 10, "Badminton": 10},
        ),
        ("GunPoint", 50, 1, 150, {"1": 24, "2": 26}),
        ("ItalyPowerDemand", 67, 1, 24, {"1": 34, "2": 33}),
    ],
)
def test_uea_ucr_train(name, n, d, t, counts):
    path = DATA / name / f"{name}_TRAIN.ts"
    X, y = read_ts(path)
    cases = ts_cases(path)
    assert len(X) == len(y) == len(cases) == n
    assert Counter(label for _, label in cases) == counts
    assert Counter(y.tolist()) == counts
    assert y.dtype.kind == "U"
    for x, (dims, label), got in zip(X, cases, y, strict=True):
        assert x.shape == (t, d) and x.dtype == np.float64
        np.testing.assert_array_equal(x, np.array(dims).T)
        assert got == label


@needs_data
def test_uea_ucr_test_split():
    X, y = read_ts(DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TEST.ts")
    assert len(X) == len(y) == 1029
    assert {x.shape for x in X} == {(24, 1)}


# -- CSV: reading -----------------------------------------------------------------------


def test_csv_bom_quotes_crlf(tmp_path):
    path = write(tmp_path / "q.csv", '\ufeff"Date","a,b", c \r\n"2000-01","1.5", 2\r\n')
    frame = read_csv(path)
    assert frame.columns == ("a,b", "c")
    assert frame.time == ("2000-01",)
    assert frame.values.tolist() == [[1.5, 2.0]]


@pytest.mark.parametrize(
    ("text", "time_column", "time", "columns"),
    [
        ("year,x\n1949,1\n1950,2\n", "auto", ("1949", "1950"), ("x",)),  # by name
        ("when,x\n1949-01,1\n1949-02,2\n", "auto", ("1949-01", "1949-02"), ("x",)),  # by cells
        ("a,x\n1949,1\n1950,2\n", "auto", None, ("a", "x")),  # numeric, not a time name
        ("year,x\n1949,1\n1950,2\n", None, None, ("year", "x")),
        ("a,x\n1949,1\n1950,2\n", "x", ("1", "2"), ("a",)),
        ("Date\n1\n2\n", "auto", None, ("Date",)),  # the only column is never the time
        (",Date,x\n0,1949,1\n1,1950,2\n", "auto", ("1949", "1950"), ("x",)),  # pandas index
    ],
)
def test_csv_time_column(tmp_path, text, time_column, time, columns):
    frame = read_csv(write(tmp_path / "t.csv", text), time_column=time_column)
    assert frame.time == time
    assert frame.columns == columns


def test_csv_one_column_blank_line_is_missing(tmp_path):
    path = write(tmp_path / "one.csv", "x\n1\n\n3\n\n\n")
    with pytest.raises(ValueError, match=at(path, r", line 3, column 'x': missing value")):
        read_csv(path)
    assert read_csv(path, missing="interpolate").values[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_csv_path_like_and_str(tmp_path):
    path = write(tmp_path / "p.csv", "a\n1\n")
    assert read_csv(str(path)).values.tolist() == read_csv(path).values.tolist() == [[1.0]]


# -- CSV: malformed input ---------------------------------------------------------------

CSV_ERRORS = [
    ("", {}, r": empty file; expected a header line and data rows, got none"),
    ("\n\n", {}, r": empty file"),
    ("a,b\n", {}, r": header only \(line 1\); expected at least one data row"),
    ("a,b,a\n1,2,3\n", {}, r", line 1: duplicate column name 'a' \(columns 1 and 3\)"),
    ("a,,b\n1,2,3\n", {}, r", line 1: column 2 has an empty name"),
    ("a,b\n1,2\n3,4,5\n", {}, r", line 3: expected 2 fields \(as in the header\), got 3"),
    ("a,b\n1,2\n3\n", {}, r", line 3: expected 2 fields \(as in the header\), got 1"),
    ("a,b\n1,2\n\n3,4\n", {}, r", line 3: expected 2 fields .*got a blank line"),
    ("a,b\n1,2\n3,abc\n", {}, r", line 3, column 'b': expected a number, got 'abc'"),
    ("a,b\n1,inf\n", {}, r", line 2, column 'b': expected a finite number, got 'inf'"),
    ("x\nfoo\n", {}, r", line 2, column 'x': expected a number, got 'foo'"),
    ("Date,x\n1949-01,1\n", {"time_column": None}, r", line 2, column 'Date': expected a number"),
    ("a,b\n1,2\n", {"columns": ["c"]}, r": unknown column 'c'; available: 'a', 'b'"),
    ("t,a,b\nx,1,2\n", {"columns": ["a", "B"]}, r": unknown column 'B'; available: 'a', 'b'"),
    ("a,b\n1,2\n", {"time_column": "z"}, r": unknown time column 'z'; available: 'a', 'b'"),
    ("Date,a\nx,2\n", {"columns": ["Date"]}, r": column 'Date' is the time column"),
    ("a,b\n1,2\n", {"columns": []}, r": columns: expected at least one column name"),
    ("a,b\n1,2\n", {"columns": ["a", "a"]}, r": columns: expected unique names"),
    ("a,b\n1,\n", {}, r", line 2, column 'b': missing value; expected a number"),
    ("a,b\n1,2\n?,3\n", {}, r", line 3, column 'a': missing value"),
    ("a,b\n1,NA\n", {"missing": "ffill"}, r", line 2, column 'b': cannot forward-fill a missing"),
    ("a,b\n1,NA\n2,?\n", {"missing": "interpolate"}, r", column 'b': every value is missing"),
    ("a,b\n1,NA\n,2\n", {"missing": "drop"}, r": every row has a missing value"),
    ('a,b\n1,"2\n', {}, r", line 2: malformed CSV"),
]


@pytest.mark.parametrize(("text", "kwargs", "message"), CSV_ERRORS)
def test_csv_errors(tmp_path, text, kwargs, message):
    path = write(tmp_path / "bad data.csv", text)
    with pytest.raises(ValueError, match=at(path, message)):
        read_csv(path, **kwargs)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,2\nGen\u00e8ve,3\n".encode("latin-1"))
    with pytest.raises(ValueError, match=at(path, r", line 3: expected UTF-8 text, got the byte")):
        read_csv(path)


def test_csv_bad_policy_directory_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"missing: expected one of error, ffill, "):
        read_csv(tmp_path, missing="zero")
    with pytest.raises(ValueError, match=at(tmp_path, r": expected a file, got a directory")):
        read_csv(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "absent.csv")


# -- missing values ---------------------------------------------------------------------

MISSING_CSV = "time,a,b,c\n1,1,10,\n2,,20,2\n3,3,?,4\n4,nan,NA,6\n5,5,50,NaN\n"


@pytest.mark.parametrize(
    ("missing", "columns", "want", "time"),
    [
        ("ffill", ["a", "b"], [[1, 10], [1, 20], [3, 20], [3, 20], [5, 50]], "12345"),
        (
            "interpolate",
            ["a", "b", "c"],
            [[1, 10, 2], [2, 20, 2], [3, 30, 4], [4, 40, 6], [5, 50, 6]],
            "12345",
        ),
        ("drop", ["a", "b"], [[1, 10], [5, 50]], "15"),
        ("drop", ["c"], [[2], [4], [6]], "234"),
    ],
)
def test_csv_missing_policies(tmp_path, missing, columns, want, time):
    path = write(tmp_path / "m.csv", MISSING_CSV)
    frame = read_csv(path, columns=columns, missing=missing)
    assert frame.values.tolist() == want
    assert frame.time == tuple(time)


def test_csv_missing_ffill_first_value(tmp_path):
    path = write(tmp_path / "m.csv", MISSING_CSV)
    with pytest.raises(
        ValueError, match=at(path, r", line 2, column 'c': cannot forward-fill .*'interpolate'")
    ):
        read_csv(path, missing="ffill")


def test_interpolate_uneven_gap(tmp_path):
    path = write(tmp_path / "g.csv", "a\n0\n\n\n6\n?\n")
    assert read_csv(path, missing="interpolate").values[:, 0].tolist() == [0, 2, 4, 6, 6]


# -- in-memory frames -------------------------------------------------------------------


class FakeDataFrame:
    """What as_frame uses of a pandas DataFrame."""

    def __init__(self, data: dict, index=None):
        self._data = data
        self.columns = list(data)
        n = len(next(iter(data.values())))
        self.index = list(range(n)) if index is None else index

    def to_numpy(self):
        return np.array(list(zip(*self._data.values(), strict=True)), dtype=object)


class FakeSeries:
    def __init__(self, values, name=None, index=None):
        self._values, self.name = np.asarray(values), name
        self.index = list(range(len(values))) if index is None else index

    def to_numpy(self):
        return self._values


def test_as_frame_dataframe_series_array():
    df = FakeDataFrame({"y": [1.0, None, 3.0], 7: [4, 5, 6]}, index=["2000", "2001", "2002"])
    frame = as_frame(df, missing="interpolate")
    assert frame.columns == ("y", "7")
    assert frame.time == ("2000", "2001", "2002")
    assert frame.values.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert as_frame(df, columns=["7"]).values.tolist() == [[4], [5], [6]]
    assert as_frame(df, missing="drop").time == ("2000", "2002")
    with pytest.raises(ValueError, match=r"^row 1 \(2001\), column 'y': missing value"):
        as_frame(df)
    series = as_frame(FakeSeries([1.0, 2.0], name="load"))
    assert series.columns == ("load",) and series.time is None
    assert series.values.tolist() == [[1.0], [2.0]]
    arr = as_frame(np.arange(6.0).reshape(3, 2))
    assert arr.columns == ("0", "1") and arr.values.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_as_frame_errors():
    with pytest.raises(ValueError, match=r"^row 1, column 'b': expected a number, got 'x'"):
        as_frame(FakeDataFrame({"a": [1, 2], "b": [3, "x"]}))
    with pytest.raises(ValueError, match=r"^row 0, column '0': expected a finite number, got inf"):
        as_frame(np.array([np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"unknown column 'z'; available: '0'"):
        as_frame(np.zeros(3), columns=["z"])
    with pytest.raises(ValueError, match=r"expected at least one row and one column, got"):
        as_frame(np.zeros((0, 2)))
    with pytest.raises(TypeError, match=r"data: expected a TimeSeriesFrame, .* got dict"):
        as_frame({"a": [1]})


def test_frame_helpers():
    frame = TimeSeriesFrame(np.arange(6).reshape(3, 2), ("a", "b"), ("x", "y", "z"))
    assert frame.values.dtype == np.float64
    assert frame.column("b").tolist() == [1, 3, 5]
    assert frame.select(["b", "a"]).tolist() == [[1, 0], [3, 2], [5, 4]]
    with pytest.raises(ValueError, match=r"unknown column 'c'; available: 'a', 'b'"):
        frame.column("c")
    with pytest.raises(ValueError, match=r"unknown column 'c'; available: 'a', 'b'"):
        frame.select(["a", "c"])
    with pytest.raises(ValueError, match=r"columns: expected 2 names .*got 1"):
        TimeSeriesFrame(np.zeros((3, 2)), ("a",))
    with pytest.raises(ValueError, match=r"time: expected 3 labels .*got 2"):
        TimeSeriesFrame(np.zeros((3, 2)), ("a", "b"), ("x", "y"))


# -- .ts: reading -----------------------------------------------------------------------


def write_ts(path: Path, X, y=None, *, labels=None, target=False, header="") -> Path:
    """A small .ts writer: values with repr, dimension-major, the label last."""
    dims = X[0].shape[1]
    lines = ["# written by the test", "@problemName roundtrip", "@timeStamps false"]
    lines += [f"@univariate {str(dims == 1).lower()}", f"@dimensions {dims}"]
    lines += [f"@equalLength {str(len({x.shape[0] for x in X}) == 1).lower()}"]
    if labels is not None:
        lines.append("@classLabel true " + " ".join(labels))
    elif target:
        lines += ["@classLabel false", "@targetLabel true"]
    else:
        lines.append("@classLabel false")
    lines += [header, "@data"] if header else ["@data"]
    for i, x in enumerate(X):
        fields = [",".join(repr(float(v)) for v in x[:, d]) for d in range(dims)]
        if y is not None:
            fields.append(repr(float(y[i])) if target else str(y[i]))
        lines.append(":".join(fields))
    return write(path, "\n".join(lines) + "\n")


def test_ts_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = [
        rng.standard_normal((int(rng.integers(1, 30)), 3)) * 10.0 ** rng.integers(-8, 8)
        for _ in range(12)
    ]
    y = rng.choice(["walk", "run", "x.1"], size=12)
    X_read, y_read = read_ts(write_ts(tmp_path / "r.ts", X, y, labels=["walk", "run", "x.1"]))
    assert [repr(v) for x in X_read for v in x.ravel().tolist()] == [
        repr(v) for x in X for v in x.ravel().tolist()
    ]
    assert [x.shape for x in X_read] == [x.shape for x in X]
    assert y_read.tolist() == y.tolist()


def test_ts_regression_and_unlabelled(tmp_path):
    X = [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0], [5.0]])]
    X_read, y = read_ts(write_ts(tmp_path / "reg.ts", X, [0.5, -2.25], target=True))
    assert y.dtype == np.float64 and y.tolist() == [0.5, -2.25]
    X_read, y = read_ts(write_ts(tmp_path / "none.ts", X))
    assert y is None
    assert [x.tolist() for x in X_read] == [x.tolist() for x in X]


def test_ts_case_insensitive_crlf_comments(tmp_path):
    text = (
        "#c\r\n@PROBLEMNAME p\r\n@TimeStamps FALSE\r\n\r\n@ClassLabel TRUE A b\r\n@DATA\r\n"
        "# a comment after @data\r\n1,2:3,4:A\r\n\r\n 5,6 : 7,8 :b \r\n"
    )
    X, y = read_ts(write(tmp_path / "c.ts", text))
    assert [x.tolist() for x in X] == [[[1, 3], [2, 4]], [[5, 7], [6, 8]]]
    assert y.tolist() == ["A", "b"]


@pytest.mark.parametrize(
    ("missing", "want"),
    [("interpolate", [[1, 7], [2, 4.5], [3, 2]]), ("ffill", [[1, 7], [1, 7], [3, 2]])],
)
def test_ts_missing(tmp_path, missing, want):
    path = write(tmp_path / "m.ts", "@classLabel false\n@data\n1,?,3:7,NaN,2\n")
    (x,), _ = read_ts(path, missing=missing)
    assert x.tolist() == want


def test_ts_missing_errors(tmp_path):
    path = write(tmp_path / "m.ts", "@classLabel false\n@data\n1,2,3:?,1,2\n")
    with pytest.raises(ValueError, match=at(path, r", line 3, dimension 2, value 1: missing")):
        read_ts(path)
    with pytest.raises(
        ValueError, match=at(path, r", line 3, dimension 2, value 1: cannot forward-fill")
    ):
        read_ts(path, missing="ffill")
    assert read_ts(path, missing="interpolate")[0][0][:, 1].tolist() == [1, 1, 2]
    with pytest.raises(
        ValueError, match=r"missing: expected one of error, ffill, interpolate, got"
    ):
        read_ts(path, missing="drop")
    path = write(tmp_path / "all.ts", "@classLabel false\n@data\n1,2:?,?\n")
    with pytest.raises(ValueError, match=at(path, r", line 3, dimension 2: every value is")):
        read_ts(path, missing="interpolate")


# -- .ts: malformed input ---------------------------------------------------------------

HEAD = (
    "@problemName t\n"  # line 1
    "@timeStamps false\n"  # 2
    "@univariate false\n"  # 3
    "@dimensions 2\n"  # 4
    "@equalLength true\n"  # 5
    "@seriesLength 3\n"  # 6
    "@classLabel true a b\n"  # 7
    "@data\n"  # 8
)
OK = "1,2,3:4,5,6:a\n"  # line 9

TS_ERRORS = [
    ("", r": no @data line; expected the header to end with @data"),
    ("@problemName t\n@classLabel false\n", r": no @data line"),
    ("1,2:3,4:a\n@data\n", r", line 1: data line before @data; expected a header line"),
    ("@problemName t\n@foo bar\n@data\n", r", line 2: unknown header '@foo'; expected one of"),
    ("@univariate maybe\n@data\n", r", line 1: @univariate: expected true or false, got 'maybe'"),
    ("@dimensions two\n@data\n", r", line 1: @dimensions: expected a positive integer, got 'two'"),
    ("@dimensions 0\n@data\n", r", line 1: @dimensions: expected a positive integer, got '0'"),
    ("@problemName\n@data\n", r", line 1: @problemName: expected a name, got nothing"),
    ("@missing false\n@missing true\n", r", line 2: @missing given twice \(first on line 1\)"),
    ("@classLabel true\n@data\n", r", line 1: @classLabel true: expected the class labels"),
    ("@classLabel true a a\n@data\n", r", line 1: @classLabel: expected unique labels"),
    ("@classLabel false a\n@data\n", r", line 1: @classLabel false: expected nothing after"),
    ("@data x\n", r", line 1: @data: expected nothing after it"),
    (
        "@problemName t\n@timeStamps true\n@data\n",
        r", line 2: @timeStamps true: timestamped .ts files are not supported",
    ),
    (
        "@univariate true\n@dimensions 2\n@data\n",
        r", line 2: @dimensions: expected 1 \(@univariate true, line 1\), got 2",
    ),
    (
        "@classLabel true a\n@targetLabel true\n@data\n",
        r", line 2: @targetLabel true: expected @classLabel false with it",
    ),
    (HEAD, r", line 8: no cases after @data; expected at least one data line"),
    (HEAD + OK + "@missing false\n", r", line 10: header line '@missing' after @data \(line 8\)"),
    (HEAD + "1,2,3:a\n", r", line 9: expected 2 dimensions \(@dimensions, line 4\), got 1"),
    (
        "@classLabel true a\n@data\n1,2:3,4:a\n1,2:3,4:5,6:a\n",
        r", line 4: expected 2 dimensions \(as on line 3\), got 3",
    ),
    (
        "@univariate true\n@classLabel true a\n@data\n1,2:3,4:a\n",
        r", line 4: expected 1 dimension \(@univariate true, line 1\), got 2",
    ),
    (
        HEAD + "1,2,3:4,5:a\n",
        r", line 9, dimension 2: expected 3 values \(as dimension 1; .*\), got 2",
    ),
    (HEAD + "1,x,3:4,5,6:a\n", r", line 9, dimension 1, value 2: expected a number, got 'x'"),
    (HEAD + "1,,3:4,5,6:a\n", r", line 9, dimension 1, value 2: expected a number, got ''"),
    (HEAD + "1,2,3::a\n", r", line 9, dimension 2: expected comma-separated numbers, got no"),
    (HEAD + "1,2,3:4,inf,6:a\n", r", line 9, dimension 2, value 2: expected a finite number"),
    (HEAD + "1,2,3,4:4,5,6,7:a\n", r", line 9: expected 3 values per dimension \(@seriesLen"),
    (
        "@equalLength true\n@classLabel true a\n@data\n1,2:3,4:a\n1:3:a\n",
        r", line 5: expected 2 values per dimension \(@equalLength true, line 1; as on line 4\)",
    ),
    (
        HEAD + OK + "1,2,3:4,5,6:c\n",
        r", line 10: unknown class label 'c'; expected one of a, b \(@classLabel, line 7\)",
    ),
    (HEAD + "1,2,3\n", r", line 9: expected dimensions then a label, separated by ':', got no"),
    (
        "@targetLabel true\n@data\n1,2:3,4:big\n",
        r", line 3, target label: expected a number, got 'big'",
    ),
    ("@targetLabel true\n@data\n1,2:3,4:?\n", r", line 3, target label: expected a number"),
]


@pytest.mark.parametrize(("text", "message"), TS_ERRORS)
def test_ts_errors(tmp_path, text, message):
    path = write(tmp_path / "bad data.ts", text)
    with pytest.raises(ValueError, match=at(path, message)):
        read_ts(path)


def test_ts_unequal_lengths_allowed_when_declared(tmp_path):
    path = write(
        tmp_path / "u.ts", "@equalLength false\n@seriesLength 2\n@classLabel false\n@data\n1,2\n3\n"
    )
    X, _ = read_ts(path)
    assert [x.shape for x in X] == [(2, 1), (1, 1)]


def test_ts_not_utf8_and_directory(tmp_path):
    path = tmp_path / "b.ts"
    path.write_bytes(b"@problemName t\n@data\n1,2\xff\n")
    with pytest.raises(
        ValueError, match=at(path, r", line 3: expected UTF-8 text, got the byte 0xff")
    ):
        read_ts(path)
    with pytest.raises(ValueError, match=at(tmp_path, r": expected a file, got a directory")):
        read_ts(tmp_path)


# -- .npz -------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, 7, 3)), np.array(["a", "b", "a", "c", "b"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X_read, y_read = read_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    np.savez(tmp_path / "lower.npz", x=X.astype(np.float32))
    X_read, y_read = read_npz(tmp_path / "lower.npz")
    assert X_read.dtype == np.float64 and y_read is None
    np.testing.assert_array_equal(X_read, X.astype(np.float32))


def test_npz_variable_length(tmp_path):
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((t, 2)) for t in (3, 1, 5)]
    np.savez(tmp_path / "parts.npz", **{f"X_{i}": s for i, s in enumerate(seqs)}, y=[0.5, 1, 2])
    X, y = read_npz(tmp_path / "parts.npz")
    assert isinstance(X, list) and len(X) == 3
    for got, want in zip(X, seqs, strict=True):
        np.testing.assert_array_equal(got, want)
    assert y.tolist() == [0.5, 1, 2]
    np.savez(tmp_path / "flat.npz", X=np.concatenate(seqs), lengths=np.array([3, 1, 5]))
    X, y = read_npz(tmp_path / "flat.npz")
    assert y is None and [x.shape for x in X] == [(3, 2), (1, 2), (5, 2)]
    for got, want in zip(X, seqs, strict=True):
        np.testing.assert_array_equal(got, want)


class _Trap:
    """Unpickling this creates a directory: proof that a pickle was (not) loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_npz_object_array_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    trap = np.empty(2, dtype=object)
    trap[0], trap[1] = _Trap(str(marker)), np.zeros(3)
    np.savez(tmp_path / "obj.npz", X=trap)
    with pytest.raises(
        ValueError, match=at(tmp_path / "obj.npz", r": X holds Python objects \(a pickle\)")
    ):
        read_npz(tmp_path / "obj.npz")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"arr_0": np.zeros(3)}, r": no X; expected the key X \(or x\).*found keys: 'arr_0'"),
        ({"X": np.zeros((2, 3)), "Y": np.zeros(2)}, r": unexpected keys 'Y'; expected X"),
        ({"X": np.zeros(2), "x": np.zeros(2)}, r": expected one layout.*found keys: 'X', 'x'"),
        ({"X": np.zeros((2, 3)), "y": np.zeros(3)}, r": y: expected 2 entries .*got shape \(3,\)"),
        ({"X_0": np.zeros(2), "X_2": np.zeros(2)}, r": expected X_0 ... X_1 for 2 .*got no X_1"),
        (
            {"X": np.zeros((4, 2)), "lengths": np.array([1, 2])},
            r": lengths: expected them to sum to 4",
        ),
        ({"X": np.zeros((4, 2)), "lengths": np.array([0, 4])}, r": lengths: expected .* all >= 1"),
        ({"X": np.array(["a", "b"])}, r": X: expected a numeric array, got dtype <U1"),
        ({"X": np.float64(1.0)}, r": X: expected an array of N sequences, got a scalar"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=at(path, message)):
        read_npz(path)


def test_npz_raw_zip_member_and_pickled_labels(tmp_path):
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X", b"not an array")
    with pytest.raises(ValueError, match=at(path, r": X: expected a .npy array, got raw bytes")):
        read_npz(path)
    np.savez(path, X=np.zeros((2, 3)), y=np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match=at(path, r": y holds Python objects .*numeric or str")):
        read_npz(path)


def test_npz_not_an_archive(tmp_path):
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(
        ValueError,
        match=at(tmp_path / "single.npy", r": expected an .npz archive .*got a single .npy array"),
    ):
        read_npz(tmp_path / "single.npy")
    path = write(tmp_path / "text.npz", "X,y\n")
    with pytest.raises(ValueError, match=at(path, r": expected an .npz archive")):
        read_npz(path)


# -- sequences --------------------------------------------------------------------------


def test_as_sequences_accepted_forms():
    three = np.arange(24.0).reshape(2, 4, 3)
    assert [s.tolist() for s in as_sequences(three)] == [three[0].tolist(), three[1].tolist()]
    two = np.arange(6).reshape(2, 3)
    out = as_sequences(two)
    assert [s.shape for s in out] == [(3, 1), (3, 1)] and out[1][:, 0].tolist() == [3, 4, 5]
    assert all(s.dtype == np.float64 for s in out)
    ragged = as_sequences([[1, 2, 3], np.array([[4.0], [5.0]]), FakeSeries([6.0])])
    assert [s.tolist() for s in ragged] == [[[1], [2], [3]], [[4], [5]], [[6]]]
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = np.zeros((2, 2)), np.ones((1, 2))
    assert [s.shape for s in as_sequences(objects)] == [(2, 2), (1, 2)]


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        ([], ValueError, r"^X: expected at least one sequence, got none"),
        (np.zeros(3), ValueError, r"^X: expected an \(N, T, D\) .*got an array of shape \(3,\)"),
        (
            [np.zeros((2, 3)), np.zeros((2, 2))],
            ValueError,
            r"^sequence 1: expected 3 features \(as sequence 0\), got 2",
        ),
        (
            [np.zeros(2), np.zeros(2), np.zeros(0)],
            ValueError,
            r"^sequence 2: expected at least one step",
        ),
        (
            [np.zeros((2, 2, 2))],
            ValueError,
            r"^sequence 0: expected shape \(T, D\) or \(T,\), got \(2, 2, 2\)",
        ),
        ([["a", "b"]], ValueError, r"^sequence 0: expected numbers, got dtype <U1"),
        (
            [[1.0, 2.0], [1.0, 2.0, np.nan]],
            ValueError,
            r"^sequence 1: expected finite values, got nan at step 2, feature 0",
        ),
        (
            [[[1.0, np.inf]]],
            ValueError,
            r"^sequence 0: expected finite values, got inf at step 0, feature 1",
        ),
        ([[[1.0], [2.0, 3.0]]], ValueError, r"^sequence 0: expected a \(T, D\) or \(T,\) array"),
        ("abc", TypeError, r"^X: expected an \(N, T, D\) or \(N, T\) array .*got str"),
    ],
)
def test_as_sequences_errors(X, error, message):
    with pytest.raises(error, match=message):
        as_sequences(X)


# -- fuzzing ----------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TMP = tempfile.TemporaryDirectory(prefix="lstmkit-fuzz-")
FUZZ_DIR = Path(_TMP.name)

CSV_ALPHABET = st.sampled_from(list('ab,;"\n\r\t .-+e0123456789?NAnD#@:x\ufeff\x00é'))
TS_ALPHABET = st.sampled_from(
    [
        *"@#:,?\n\r .-+e0123456789abtrufls",
        "@data",
        "@classLabel true a b",
        "@dimensions 2",
        "@equalLength true",
        "@seriesLength 2",
        "@targetLabel true",
        "@univariate true",
        ":a",
        ":b",
    ]
)


def fuzz_file(name: str, data: bytes) -> Path:
    path = FUZZ_DIR / name
    path.write_bytes(data)
    return path


def returns_or_value_error(read, path: Path, **kwargs) -> None:
    try:
        read(path, **kwargs)
    except ValueError as e:
        assert type(e) is ValueError, f"{type(e).__name__}: {e}"
        assert str(e).startswith(str(path)), f"the message does not name the file: {e}"


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=200), st.text(CSV_ALPHABET, max_size=200).map(str.encode)),
    missing=st.sampled_from(["error", "ffill", "interpolate", "drop"]),
    time_column=st.sampled_from(["auto", None, "a"]),
)
def test_fuzz_read_csv(data, missing, time_column):
    returns_or_value_error(
        read_csv, fuzz_file("f.csv", data), missing=missing, time_column=time_column
    )


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.lists(TS_ALPHABET, max_size=60).map(lambda parts: "".join(parts).encode()),
    ),
    missing=st.sampled_from(["error", "ffill", "interpolate"]),
)
def test_fuzz_read_ts(data, missing):
    returns_or_value_error(read_ts, fuzz_file("f.ts", data), missing=missing)


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"]),
    data=st.binary(max_size=200),
)
def test_fuzz_read_npz(prefix, data):
    returns_or_value_error(read_npz, fuzz_file("f.npz", prefix + data))


FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
NAMES = st.lists(st.text("abcdefgh", min_size=1, max_size=5), min_size=1, max_size=4, unique=True)


@FUZZ
@given(names=NAMES, data=st.data())
def test_fuzz_csv_round_trip(names, data):
    t_size = data.draw(st.integers(1, 12))
    values = data.draw(
        st.lists(
            st.lists(FINITE, min_size=len(names), max_size=len(names)),
            min_size=t_size,
            max_size=t_size,
        )
    )
    path = FUZZ_DIR / "rt.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Date", *names])
        for t, row in enumerate(values):
            writer.writerow([f"t{t}", *map(repr, row)])
    frame = read_csv(path)
    assert frame.columns == tuple(names)
    assert frame.time == tuple(f"t{t}" for t in range(t_size))
    assert [[repr(v) for v in row] for row in frame.values.tolist()] == [
        [repr(float(v)) for v in row] for row in values
    ]


def ffill_oracle(column: list[float | None]) -> list[float]:
    out, last = [], None
    for v in column:
        last = v if v is not None else last
        out.append(last)
    return out


def interpolate_oracle(column: list[float | None]) -> list[float]:
    known = [i for i, v in enumerate(column) if v is not None]
    out = []
    for i, v in enumerate(column):
        if v is not None:
            out.append(v)
        elif i < known[0]:
            out.append(column[known[0]])
        elif i > known[-1]:
            out.append(column[known[-1]])
        else:
            a = max(k for k in known if k < i)
            b = min(k for k in known if k > i)
            out.append(column[a] + (column[b] - column[a]) * (i - a) / (b - a))
    return out


SMALL = st.integers(-1000, 1000).map(float)


@FUZZ
@given(
    column=st.lists(st.one_of(st.none(), SMALL), min_size=1, max_size=15).filter(
        lambda c: any(v is not None for v in c)
    ),
    token=st.sampled_from(["", "NA", "NaN", "nan", "?"]),
)
def test_fuzz_missing_policies(column, token):
    path = FUZZ_DIR / "miss.csv"
    cells = [token if v is None else repr(v) for v in column]
    path.write_text("x,y\n" + "".join(f"{c},{i}\n" for i, c in enumerate(cells)))
    got = read_csv(path, missing="interpolate", time_column=None, columns=["x"]).values[:, 0]
    np.testing.assert_allclose(got, interpolate_oracle(column), rtol=1e-12, atol=1e-12)
    if column[0] is not None:
        got = read_csv(path, missing="ffill", time_column=None, columns=["x"]).values[:, 0]
        assert got.tolist() == ffill_oracle(column)
    kept = read_csv(path, missing="drop", time_column="y")
    assert kept.values[:, 0].tolist() == [v for v in column if v is not None]
    assert kept.time == tuple(str(i) for i, v in enumerate(column) if v is not None)


@FUZZ
@given(data=st.data())
def test_fuzz_ts_round_trip(data):
    dims = data.draw(st.integers(1, 3))
    n = data.draw(st.integers(1, 5))
    X = [
        np.array(
            data.draw(
                st.lists(st.lists(FINITE, min_size=dims, max_size=dims), min_size=1, max_size=8)
            )
        )
        for _ in range(n)
    ]
    y = data.draw(st.lists(st.sampled_from(["a", "b", "7"]), min_size=n, max_size=n))
    X_read, y_read = read_ts(write_ts(FUZZ_DIR / "rt.ts", X, y, labels=["a", "b", "7"]))
    assert y_read.tolist() == y
    for got, want in zip(X_read, X, strict=True):
        assert got.shape == want.shape
        assert [repr(v) for v in got.ravel().tolist()] == [repr(v) for v in want.ravel().tolist()]


def test_real_pandas_objects():
    """The duck typing above against real pandas: a DataFrame with a DatetimeIndex, pd.NA
    and an object column, a Series, and the estimators fed pandas directly."""
    pd = pytest.importorskip("pandas")
    from lstmkit.tasks import Forecaster, SequenceClassifier

    index = pd.date_range("2000-01-01", periods=3, freq="MS")
    df = pd.DataFrame({"y": pd.array([1.0, pd.NA, 3.0], dtype="Float64"), "n": ["4", "5", "6"]})
    df.index = index
    frame = as_frame(df, missing="interpolate")
    assert frame.columns == ("y", "n")
    assert frame.time == tuple(str(t) for t in index)
    assert frame.values.tolist() == [[1, 4], [2, 5], [3, 6]]
    with pytest.raises(ValueError, match=r"^row 1 \(2000-02-01 00:00:00\), column 'y': missing"):
        as_frame(df)
    series = as_frame(pd.Series([1.5, 2.5], name="load"))
    assert series.columns == ("load",) and series.time is None
    assert series.values.tolist() == [[1.5], [2.5]]

    values = np.sin(np.arange(60) / 3.0) + np.arange(60) / 30
    kw = {"lookback": 6, "hidden_size": 8, "epochs": 3, "progress": False}
    from_numpy = Forecaster(**kw).fit(values).predict()
    from_pandas = Forecaster(**kw).fit(pd.Series(values, index=pd.RangeIndex(60))).predict()
    np.testing.assert_array_equal(from_numpy, from_pandas)

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(n), 2)) for n in rng.integers(3, 8, size=20)]
    y = np.arange(20) % 2
    kw = {"hidden_size": 4, "epochs": 2, "progress": False}
    a = SequenceClassifier(**kw).fit(X, y).predict_proba(X)
    frames = [pd.DataFrame(x, columns=["a", "b"]) for x in X]
    b = SequenceClassifier(**kw).fit(frames, pd.Series(y)).predict_proba(frames)
    np.testing.assert_array_equal(a, b)
