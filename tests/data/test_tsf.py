"""The Monash ``.tsf`` reader and writer: a hand-written file, round trips, errors, fuzzing.

Oracles: arrays and attributes typed by hand from the small files below; hand-computed
interpolation; exact write → read round trips (values compared by ``repr``); the error
contract ("file, line N, series 'X', value K: expected ..., got ..."). Fuzzing: random
bytes, token soups and random edits of a valid file either read to a consistent
:class:`TsfData` or raise ``ValueError`` naming the file — never another exception.
"""

import re
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmkit.data import TsfData, read_tsf, write_tsf

TOURISM = """\
# A small yearly set in the archive's layout.
# Comments and blank lines may appear anywhere.
@relation tiny_yearly
@attribute series_name string
@attribute start_timestamp date
@frequency yearly
@horizon 2
@missing false
@equallength false

@data
T1:1979-01-01 00-00-00:1508,1440,1551,1678
# a comment between series
T2:1982-01-01 00-00-00:4.5,-0.25,6e2

T3:2000-06-30 12-30-00:7
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def at(path: Path, rest: str = "") -> str:
    """``match`` pattern for an error message that starts with ``path`` then ``rest``."""
    return "^" + re.escape(str(path)) + rest


def tsf(body: str, header: str = "@attribute series_name string\n") -> str:
    """A file: ``header`` lines, ``@data``, then ``body``."""
    return header + "@data\n" + body


def assert_same(got: TsfData, want: TsfData) -> None:
    """Field-by-field equality, values by ``repr`` (so -0.0, NaN and the last bit count)."""
    assert got.names == want.names
    assert got.starts == want.starts
    assert got.attributes == want.attributes
    assert {k: [type(v) for v in c] for k, c in got.attributes.items()} == {
        k: [type(v) for v in c] for k, c in want.attributes.items()
    }
    assert (got.frequency, got.horizon, got.missing, got.equal_length, got.relation) == (
        want.frequency,
        want.horizon,
        want.missing,
        want.equal_length,
        want.relation,
    )
    assert [[repr(v) for v in s.tolist()] for s in got.series] == [
        [repr(float(v)) for v in np.asarray(s).tolist()] for s in want.series
    ]


# -- a hand-written file ----------------------------------------------------------------


def test_read_hand_written_file(tmp_path):
    data = read_tsf(write(tmp_path / "tiny.tsf", TOURISM))
    assert isinstance(data, TsfData) and len(data) == 3
    assert data.names == ["T1", "T2", "T3"]
    assert data.starts == ["1979-01-01 00-00-00", "1982-01-01 00-00-00", "2000-06-30 12-30-00"]
    assert data.attributes == {"series_name": data.names, "start_timestamp": data.starts}
    want = [[1508.0, 1440.0, 1551.0, 1678.0], [4.5, -0.25, 600.0], [7.0]]
    assert [s.tolist() for s in data.series] == want
    assert all(s.dtype == np.float64 and s.ndim == 1 for s in data.series)
    assert data.frequency == "yearly" and data.horizon == 2
    assert data.missing is False and data.equal_length is False
    assert data.relation == "tiny_yearly"


def test_numeric_attributes_defaults_and_spellings(tmp_path):
    """Numeric attributes are int where written as integers, float otherwise; without
    series_name the names are the 1-based positions; without start_timestamp the starts are
    None; without @missing/@equallength those flags describe the data; keys in any case,
    @missingvalues for @missing, a byte-order mark and CRLF line ends are read."""
    text = (
        "\ufeff@ATTRIBUTE state string\r\n@Attribute weight numeric\r\n@attribute k numeric\r\n"
        "@Frequency 10_minutes\r\n@data\r\nNSW:0.5:3:1,2\r\nVIC : -2 : -7 : 3 , 4\r\n"
    )
    data = read_tsf(write(tmp_path / "n.tsf", text))
    assert data.names == ["1", "2"] and data.starts == [None, None]
    assert data.attributes == {"state": ["NSW", "VIC"], "weight": [0.5, -2], "k": [3, -7]}
    assert [type(v) for v in data.attributes["weight"]] == [float, int]
    assert [s.tolist() for s in data.series] == [[1.0, 2.0], [3.0, 4.0]]
    assert data.frequency == "10_minutes" and data.horizon is None and data.relation is None
    assert data.missing is False and data.equal_length is True

    text = tsf("a:1,?\nb:2\n", "@attribute series_name string\n@missingvalues TRUE\n")
    data = read_tsf(write(tmp_path / "m.tsf", text), missing="keep")
    assert data.missing is True and data.equal_length is False
    data = read_tsf(write(tmp_path / "u.tsf", tsf("a:1,?\n")), missing="interpolate")
    assert data.missing is True  # the file had a missing value, though none is left
    assert data.series[0].tolist() == [1.0, 1.0]


# -- round trips ------------------------------------------------------------------------


def test_round_trip_hand_written_file(tmp_path):
    data = read_tsf(write(tmp_path / "tiny.tsf", TOURISM))
    out = write_tsf(tmp_path / "out" / "copy.tsf", data)
    assert out == tmp_path / "out" / "copy.tsf"
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.tsf"]  # no temporary left
    assert_same(read_tsf(out), data)
    # the archive's own reader expects single spaces in the header and @missing
    assert out.read_text().splitlines()[:8] == [
        "@relation tiny_yearly",
        "@attribute series_name string",
        "@attribute start_timestamp date",
        "@frequency yearly",
        "@horizon 2",
        "@missing false",
        "@equallength false",
        "@data",
    ]


def test_round_trip_built_data(tmp_path):
    """TsfData built in code: names and starts become series_name/start_timestamp columns,
    NaN becomes '?', numbers keep their type."""
    data = TsfData(
        names=["a", "b"],
        series=[np.array([1e-300, np.nan, -0.0]), [2.5, 1.7976931348623157e308, 3.0]],
        starts=["2020-01-01 00-00-00", "2021-02-03 04-05-06"],
        attributes={"region": ["north", "south-east 2"], "size": [3, 0.1]},
        frequency="half_hourly",
        horizon=48,
        missing=True,
        equal_length=True,
        relation="two words",
    )
    path = write_tsf(tmp_path / "built.tsf", data)
    got = read_tsf(path, missing="keep")
    want_attributes = {"series_name": ["a", "b"], **data.attributes}
    want_attributes["start_timestamp"] = data.starts
    assert got.attributes == want_attributes
    assert [type(v) for v in got.attributes["size"]] == [int, float]
    assert got.names == data.names and got.starts == data.starts
    assert [[repr(v) for v in s.tolist()] for s in got.series] == [
        ["1e-300", "nan", "-0.0"],
        ["2.5", "1.7976931348623157e+308", "3.0"],
    ]
    assert (got.frequency, got.horizon, got.missing, got.equal_length, got.relation) == (
        "half_hourly",
        48,
        True,
        True,
        "two words",
    )


WRITE_ERRORS = [
    ({"series": [[1.0, np.nan]]}, r"series 0 \('a'\): NaN \(missing\) values, but data.missing"),
    ({"series": [[1.0, np.inf]]}, r"series 0 \('a'\): expected finite values or NaN, got inf"),
    ({"names": ["a:b"]}, r"attributes\['series_name'\]\[0\]: expected text without ':'"),
    ({"names": ["#a"]}, r"not starting with # or @"),
    ({"names": [" a"]}, r"surrounding spaces"),
    ({"starts": ["yesterday"]}, r"starts: expected all dates YYYY-MM-DD HH-MM-SS"),
    ({"attributes": {"x": [np.nan]}}, r"attributes\['x'\]\[0\]: expected a finite number"),
    ({"attributes": {"x": [True]}}, r"attributes\['x'\]: expected numbers or str, got a bool"),
    ({"attributes": {"two words": ["v"]}}, r"attributes: expected names without spaces"),
    ({"attributes": {"series_name": ["b"]}}, r"names: expected the values of attributes"),
    ({"relation": "a\nb"}, r"relation: expected words separated by single spaces"),
    ({"frequency": "every day"}, r"frequency: expected a word"),
    ({"horizon": 0}, r"horizon: expected a positive integer, got 0"),
]


@pytest.mark.parametrize(("change", "message"), WRITE_ERRORS)
def test_write_errors(tmp_path, change, message):
    fields = {"names": ["a"], "series": [[1.0, 2.0]], "starts": [None], "attributes": {}}
    data = TsfData(**{**fields, **change})
    with pytest.raises(ValueError, match=message):
        write_tsf(tmp_path / "w.tsf", data)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary


def test_write_unequal_lengths_and_bad_data(tmp_path):
    data = TsfData(["a", "b"], [[1.0], [2.0, 3.0]], [None, None], {}, equal_length=True)
    with pytest.raises(ValueError, match=r"^series 1 \('b'\): expected 1 values \(data.equal"):
        write_tsf(tmp_path / "w.tsf", data)
    with pytest.raises(TypeError, match=r"data: expected a TsfData, got dict"):
        write_tsf(tmp_path / "w.tsf", {})
    with pytest.raises(ValueError, match=r"^series 0: expected a 1-D array with at least one"):
        TsfData(["a"], [[]], [None], {})
    with pytest.raises(ValueError, match=r"attributes\['x'\]: expected 1 values .* got 2"):
        TsfData(["a"], [[1.0]], [None], {"x": [1, 2]})


# -- errors -----------------------------------------------------------------------------

SERIES = "@attribute series_name string\n@attribute start_timestamp date\n"
READ_ERRORS = [
    ("@attribute series_name string\nT1:1,2\n", {}, r", line 2: data line before @data"),
    ("@attribute series_name string\n", {}, r": no @data line; expected the header to end"),
    (tsf(""), {}, r", line 2: no series after @data; expected at least one data line"),
    (tsf("T1:1\n@horizon 2\n"), {}, r", line 4: header line '@horizon' after @data \(line 2\)"),
    ("@unknown 3\n@data\n1\n", {}, r", line 1: unknown header '@unknown'; expected one of @rel"),
    ("@\n@data\n1\n", {}, r", line 1: unknown header '@'; expected one of"),
    ("@horizon two\n@data\n1\n", {}, r", line 1: @horizon: expected a positive integer, got 'tw"),
    ("@horizon 0\n@data\n1\n", {}, r", line 1: @horizon: expected a positive integer, got '0'"),
    ("@horizon 1 2\n@data\n1\n", {}, r", line 1: @horizon: expected one value, got \['1', '2'\]"),
    ("@frequency\n@data\n1\n", {}, r", line 1: @frequency: expected one value, got \[\]"),
    ("@frequency a-b\n@data\n1\n", {}, r", line 1: @frequency: expected a word such as yearly"),
    ("@missing maybe\n@data\n1\n", {}, r", line 1: @missing: expected true or false, got 'may"),
    ("@equallength 1\n@data\n1\n", {}, r", line 1: @equallength: expected true or false"),
    ("@relation\n@data\n1\n", {}, r", line 1: @relation: expected a name, got nothing"),
    ("@data now\n1\n", {}, r", line 1: @data: expected nothing after it"),
    ("@horizon 1\n@horizon 2\n@data\n1\n", {}, r", line 2: @horizon given twice \(first on l"),
    ("@missing true\n@missingvalues true\n@data\n1\n", {}, r", line 2: @missing given twice"),
    ("@attribute name\n@data\n1\n", {}, r", line 1: @attribute: expected a name and a type"),
    ("@attribute x integer\n@data\n1:1\n", {}, r", line 1: @attribute x: unknown type 'integ"),
    ("@attribute x string\n@attribute x numeric\n@data\n", {}, r", line 2: @attribute x given"),
    (tsf("T1:2:1,2\n"), {}, r", line 3: expected 2 ':'-separated fields \(the attributes seri"),
    (tsf("1,2\n"), {}, r", line 3: expected 2 ':'-separated fields .* got 1"),
    ("@data\nT1:1\n", {}, r", line 2: expected 1 ':'-separated fields \(no attributes, only"),
    (tsf("T1:1,2\nT2:3,x4\n"), {}, r", line 4, series 'T2', value 2: expected a number or '\?'"),
    (tsf("T1:1,,2\n"), {}, r", line 3, series 'T1', value 2: expected a number or '\?' \(mis"),
    (tsf("T1:\n"), {}, r", line 3, series 'T1': empty series; expected at least one comma-sep"),
    (tsf("T1:1,2,1e999\n"), {}, r", line 3, series 'T1', value 3: expected a finite number, g"),
    (tsf("T1:-inf\n"), {}, r", line 3, series 'T1', value 1: expected a finite number, got '-"),
    (
        tsf("T1:x:1\n", "@attribute series_name string\n@attribute w numeric\n"),
        {},
        r", line 4, series 'T1', attribute 'w': expected a finite number \(numeric\), got 'x'",
    ),
    (
        tsf("T1:1e999:1\n", "@attribute series_name string\n@attribute w numeric\n"),
        {},
        r", line 4, series 'T1', attribute 'w': expected a finite number",
    ),
    (
        tsf("T1:1979-13-01 00-00-00:1\n", SERIES),
        {},
        r", line 4, series 'T1', attribute 'start_timestamp': expected a date YYYY-MM-DD HH-MM-SS",
    ),
    (
        tsf("T1:1979-01-01:1\n", SERIES),
        {},
        r", line 4, series 'T1', attribute 'start_timestamp': expected a date .* got '1979-01-01'",
    ),
    (
        tsf("T1:1,2\nT2:3,?,5\n"),
        {},
        r", line 4, series 'T2', value 2: missing value '\?'; expected a number \(missing='error'"
        r"\); pass missing='interpolate' to fill it or missing='keep' to keep it as NaN",
    ),
    (
        tsf("T1:1,nan\n"),
        {},
        r", line 3, series 'T1', value 2: missing value",
    ),
    (
        tsf("T1:1,2\nT2:?\n", "@attribute series_name string\n@missing false\n"),
        {"missing": "keep"},
        r", line 5, series 'T2', value 1: missing value '\?', but the header declares @missing "
        r"false \(line 2\)",
    ),
    (
        tsf("T1:1,?\n", "@attribute series_name string\n@missing false\n"),
        {"missing": "interpolate"},
        r", line 4, series 'T1', value 2: missing value '\?', but the header declares @missing",
    ),
    (
        tsf("T1:1,2\nT2:3,4\nT3:5\nT4:6\n", "@attribute series_name string\n@equallength true\n"),
        {},
        r", line 6, series 'T3': expected 2 values \(@equallength true, line 2; as series 'T1' "
        r"on line 4\), got 1",
    ),
    (
        tsf("T1:1\nT2:?,?\n"),
        {"missing": "interpolate"},
        r", line 4, series 'T2': every value is missing; expected at least one number",
    ),
]


@pytest.mark.parametrize(("text", "kwargs", "message"), READ_ERRORS)
def test_read_errors(tmp_path, text, kwargs, message):
    path = write(tmp_path / "bad data.tsf", text)
    with pytest.raises(ValueError, match=at(path, message)) as info:
        read_tsf(path, **kwargs)
    assert "\n" not in str(info.value)


def test_not_utf8_directory_missing_file_bad_policy(tmp_path):
    path = tmp_path / "latin1.tsf"
    path.write_bytes(tsf("Gen\u00e8ve:1,2\n").encode("latin-1"))
    with pytest.raises(ValueError, match=at(path, r", line 3: expected UTF-8 text, got the byte")):
        read_tsf(path)
    with pytest.raises(ValueError, match=at(tmp_path, r": expected a file, got a directory")):
        read_tsf(tmp_path)
    absent = tmp_path / "absent.tsf"
    with pytest.raises(FileNotFoundError, match=at(absent, r": no such file; expected a .tsf")):
        read_tsf(absent)
    with pytest.raises(ValueError, match=r"^missing: expected one of error, keep, interpolate"):
        read_tsf(write(tmp_path / "ok.tsf", TOURISM), missing="ffill")


# -- missing values ---------------------------------------------------------------------

MISSING = tsf(
    "a:?,2,?,?,8,?\nb:1,2\nc:?,?,-3\nd:10,?,?,?,?,?,?,?,?,?,0\n",
    "@attribute series_name string\n@missing true\n",
)


def test_missing_keep_and_interpolate(tmp_path):
    path = write(tmp_path / "missing.tsf", MISSING)
    kept = read_tsf(path, missing="keep")
    nan = np.nan
    want_kept = [[nan, 2, nan, nan, 8, nan], [1, 2], [nan, nan, -3], [10, *[nan] * 9, 0]]
    for got, want in zip(kept.series, want_kept, strict=True):
        np.testing.assert_array_equal(got, want)  # NaN where '?', the rest exact
    filled = read_tsf(path, missing="interpolate")
    # by hand: a: 2 at the start, 2 + (8 - 2) * (t - 1) / 3 inside, 8 at the end;
    # c: the nearest known value; d: 10 - t from 10 down to 0
    want_filled = [[2, 2, 4, 6, 8, 8], [1, 2], [-3, -3, -3], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    for got, want in zip(filled.series, want_filled, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-14)
    assert kept.missing is True and filled.missing is True
    with pytest.raises(ValueError, match=at(path, r", line 4, series 'a', value 1: missing")):
        read_tsf(path)


def test_interpolate_huge_values_does_not_overflow(tmp_path):
    path = write(tmp_path / "huge.tsf", tsf("a:1.7e308,?,-1.7e308\n"))
    got = read_tsf(path, missing="interpolate").series[0]
    assert got.tolist() == [1.7e308, 0.0, -1.7e308]


# -- fuzzing ----------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TMP = tempfile.TemporaryDirectory(prefix="lstmkit-tsf-fuzz-")
FUZZ_DIR = Path(_TMP.name)
POLICIES = st.sampled_from(["error", "keep", "interpolate"])
TOKENS = st.sampled_from(
    [
        *"@#:,?\n\r .-+e0123456789abtrufls\ufeff\x00",
        "@data",
        "@attribute series_name string",
        "@attribute start_timestamp date",
        "@attribute w numeric",
        "@attribute x blob",
        "@frequency yearly",
        "@horizon 3",
        "@missing false",
        "@missingvalues true",
        "@equallength true",
        "@relation r",
        "1979-01-01 00-00-00",
        "1e999",
        "nan",
        "T1:",
    ]
)


def fuzz_file(name: str, data: bytes) -> Path:
    path = FUZZ_DIR / name
    path.write_bytes(data)
    return path


def read_or_value_error(path: Path, missing: str) -> None:
    """read_tsf returns a consistent TsfData or raises a one-line ValueError naming the file."""
    try:
        data = read_tsf(path, missing=missing)
    except ValueError as e:
        assert type(e) is ValueError, f"{type(e).__name__}: {e}"
        assert str(e).startswith(str(path)), f"the message does not name the file: {e}"
        assert "\n" not in str(e), f"a message of several lines: {e}"
        return
    n = len(data.series)
    assert n >= 1 and len(data.names) == n and len(data.starts) == n
    assert all(len(column) == n for column in data.attributes.values())
    assert all(type(v) in (int, float, str) for c in data.attributes.values() for v in c)
    for s in data.series:
        assert s.dtype == np.float64 and s.ndim == 1 and s.size >= 1
        assert not np.isinf(s).any()
        assert missing == "keep" or not np.isnan(s).any()
    assert data.missing or not any(np.isnan(s).any() for s in data.series)
    assert not data.equal_length or len({s.size for s in data.series}) == 1
    assert data.horizon is None or data.horizon >= 1


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.lists(TOKENS, max_size=60).map(lambda parts: "".join(parts).encode()),
    ),
    missing=POLICIES,
)
def test_fuzz_read_tsf(data, missing):
    read_or_value_error(fuzz_file("f.tsf", data), missing)


NAME = st.text("abcXYZ019_-.", min_size=1, max_size=6)
VALUE = st.floats(allow_infinity=False, width=64)  # NaN included: written as ?
NUMBER = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False))
DATE = st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda t: t.strftime("%Y-%m-%d %H-%M-%S"))


@settings(FUZZ, max_examples=50)  # each example writes (and fsyncs) a file
@given(data=st.data())
def test_fuzz_round_trip(data):
    n = data.draw(st.integers(1, 5))
    series = [data.draw(st.lists(VALUE, min_size=1, max_size=8)) for _ in range(n)]
    has_nan = any(v != v for s in series for v in s)
    built = TsfData(
        names=data.draw(st.lists(NAME, min_size=n, max_size=n)),
        series=series,
        starts=data.draw(st.one_of(st.just([None] * n), st.lists(DATE, min_size=n, max_size=n))),
        attributes={
            "w": data.draw(st.lists(NUMBER, min_size=n, max_size=n)),
            "kind": data.draw(st.lists(NAME, min_size=n, max_size=n)),
        },
        frequency=data.draw(st.one_of(st.none(), st.sampled_from(["yearly", "4_seconds"]))),
        horizon=data.draw(st.one_of(st.none(), st.integers(1, 100))),
        missing=has_nan or data.draw(st.booleans()),
        equal_length=len({len(s) for s in series}) == 1 and data.draw(st.booleans()),
        relation=data.draw(st.one_of(st.none(), st.sampled_from(["m4", "a b c"]))),
    )
    got = read_tsf(write_tsf(FUZZ_DIR / "rt.tsf", built), missing="keep")
    want = {"series_name": built.names, **built.attributes}
    if built.starts[0] is not None:
        want["start_timestamp"] = built.starts
    assert_same(got, TsfData(**{**built.__dict__, "attributes": want}))


@pytest.mark.parametrize(
    "frequency, season",
    [
        ("yearly", 1),
        ("Quarterly", 4),
        ("monthly", 12),
        ("weekly", 52),
        ("daily", 7),
        ("hourly", 24),
        ("half_hourly", None),
        ("10_minutes", None),
        (None, None),
    ],
)
def test_season_of_the_frequency(frequency, season):
    data = TsfData(["a"], [[1.0, 2.0]], [None], {}, frequency=frequency)
    assert data.season == season
