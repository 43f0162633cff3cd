"""lstmkit's compiled loops for the cell variants, built on first use.

``variant_loops.cpp`` holds the time loop of one direction of the variant LSTM and GRU,
forward and backward (``torch.ops.lstmkit.lstm_forward`` and so on): per step the recurrent
matmul and then one vectorised pass over each row for all the pointwise work of the step.
The per-step products call BLAS (``sgemm_``/``dgemm_``, torch's own MKL where its library
exports them) on the step's rows, else ATen's ``mm`` (``LSTMKIT_PRODUCTS=aten`` forces the
latter, for tests and diagnosis). The engines call them with named arguments, the names of
the schemas in the ``TORCH_LIBRARY`` block at the end of the source (a misspelt or missing
one is an error from torch's dispatcher, not a silent shift of positions).
:mod:`lstmkit.recurrence.lstm_variants` and :mod:`~lstmkit.recurrence.gru_variants` call
them in place of their python steps, which do the same arithmetic as a dozen torch calls
per step — exact too, but slower (figures in ``docs/benchmarks.md``). With more than one
thread a batch of 16 rows or more is cut into blocks of rows, each block's whole time loop
on its own thread (one fork and join per call); a block computes exactly what the whole
batch computes for its rows. For float the gates use a polynomial ``exp`` within 20 ULP
(torch's ``exp_u20``; differences from torch.nn of about 1e-7), for double the correctly
rounded one.

The library is compiled with torch's own extension builder (``torch.utils.cpp_extension``,
ninja and the system C++ compiler) the first time a variant runs on the ``fused``
backend, into :func:`cache_dir` (by default ``~/.cache/lstmkit/kernels``); that takes
about 15 s once per machine and source version. The environment variable
``LSTMKIT_KERNELS`` chooses:

* ``auto`` (default): the compiled loops; if they cannot be built, one warning names
  the reason and the python steps run;
* ``compiled``: the compiled loops or an error;
* ``python``: the python steps.

That is the process-wide default of ``backend="fused"``; a module can name either
implementation itself, ``backend="compiled"`` (an error where the loops cannot run) or
``backend="python-steps"`` (:func:`ops_named`; :mod:`lstmkit.backends`).
"""

import functools
import hashlib
import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path
from subprocess import SubprocessError

import torch

SOURCE = Path(__file__).with_name("variant_loops.cpp")
CHOICES = ("auto", "compiled", "python")
_choice: str | None = None  # set by use(); None: the environment variable decides


def _flags() -> list[str]:
    """Compiler flags for the vector width torch itself runs at on this CPU."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability == "AVX512":
        isa = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
    elif capability == "AVX2":
        isa = ["-mavx2", "-mfma"]
    else:  # torch's portable vector type, which the compiler vectorises as it can
        return ["-O3"]
    return ["-O3", *isa, f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}"]


def _openmp() -> list[str]:
    """``-fopenmp`` where torch itself runs on OpenMP on Linux: ATen's ``parallel_for``,
    which the loops use to run blocks of a batch on several threads, is OpenMP pragmas
    compiled into the caller — without the flag it runs serially. The extension then links
    ``libgomp.so.1``, the runtime torch has already loaded (one runtime, one thread pool)."""
    if sys.platform.startswith("linux") and "OpenMP" in torch.__config__.parallel_info():
        return ["-fopenmp"]
    return []


def _name(flags: list[str]) -> str:
    """One build per source text, flags and torch version."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join([*flags, torch.__version__]).encode())
    return f"lstmkit_variants_{digest.hexdigest()[:12]}"


STALE_LOCK_SECONDS = 120  # a build takes ~15 s; a lock this old was left by a killed one
_lock = threading.Lock()


@functools.cache
def _build():
    """(torch.ops.lstmkit, None) once the library is loaded, or (None, why it is not)."""
    with _lock:  # one build per process, whichever thread asks first
        return _build_once()


def _build_once():
    from torch.utils import cpp_extension

    openmp = _openmp()
    flags = _flags() + openmp
    name = _name(flags)
    directory = cache_dir() / name
    library, failed = directory / f"{name}.so", directory / "build-failed.txt"
    if not library.exists() and failed.exists():
        return None, f"{failed.read_text().strip()} (recorded in {failed}; delete it to retry)"
    if not library.exists():
        print(f"lstmkit: compiling the variant kernels (once, ~15 s) into {directory}",
              file=sys.stderr, flush=True)  # fmt: skip
    path = os.environ.get("PATH")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _clear_stale_lock(directory / "lock", library)
        os.environ["PATH"] = os.pathsep.join(filter(None, [_ninja_dir(), path]))
        cpp_extension.load(
            name,
            [str(SOURCE)],
            extra_cflags=flags,
            extra_ldflags=openmp,
            build_directory=str(directory),
            is_python_module=False,
            verbose=False,
        )
    except (OSError, RuntimeError, SubprocessError, SystemExit) as err:  # no compiler, ninja
        reason = _reason(err)
        if not library.exists():  # later processes say the same without trying again
            with suppress(OSError):  # the record only saves later processes a failing build
                failed.write_text(reason + "\n")
        return None, reason
    finally:
        if path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = path
    return torch.ops.lstmkit, None


def _ninja_dir() -> str | None:
    """The ninja binary's folder from the ``ninja`` package (a virtual environment's bin
    is not on PATH unless activated), or None to rely on PATH."""
    try:
        import ninja
    except ImportError:
        return None
    return ninja.BIN_DIR


def _clear_stale_lock(lock: Path, library: Path) -> None:
    """torch's builder waits, without a timeout, for the lock file of a build in progress;
    a build killed part-way leaves it behind. Wait for a live one; remove a stale one."""
    said = False
    while lock.exists() and not library.exists():
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if not said:
            print(f"lstmkit: waiting for the kernel build in progress ({lock})",
                  file=sys.stderr, flush=True)  # fmt: skip
            said = True
        if age > STALE_LOCK_SECONDS:
            print(f"lstmkit: removing a stale build lock ({age:.0f} s old): {lock}",
                  file=sys.stderr, flush=True)  # fmt: skip
            lock.unlink(missing_ok=True)
            return
        time.sleep(0.5)


def _reason(err: BaseException) -> str:
    """One line for a failed build: the compiler's first error, else the last line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
    telling = [
        line
        for line in lines
        if ("error" in line.lower() or "not found" in line)
        and not line.startswith(("FAILED:", "ninja:", "Error building extension"))
    ]
    return f"{type(err).__name__}: {(telling or lines)[0 if telling else -1][:300]}"


def cache_dir() -> Path:
    """Where the builds go: ``LSTMKIT_CACHE``, else ``$XDG_CACHE_HOME/lstmkit`` (by default
    ``~/.cache/lstmkit``), one folder per source version, flags and torch version."""
    if os.environ.get("LSTMKIT_CACHE"):
        return Path(os.environ["LSTMKIT_CACHE"]) / "kernels"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmkit" / "kernels"


def choice() -> str:
    """The step implementation asked for: use()'s, else ``LSTMKIT_KERNELS``, else auto."""
    value = _choice or os.environ.get("LSTMKIT_KERNELS", "auto")
    if value not in CHOICES:
        raise ValueError(f"LSTMKIT_KERNELS: expected one of {', '.join(CHOICES)}, got {value!r}")
    return value


def ops():
    """The compiled kernels (``torch.ops.lstmkit``), or None for the python steps."""
    wanted = choice()
    if wanted == "python":
        return None
    if wanted == "compiled":
        return _compiled()
    lib, reason = _build()
    if lib is None:
        _warn_once(reason)
    return lib


def _compiled():
    """The compiled loops, or RuntimeError naming why they could not be built."""
    lib, reason = _build()
    if lib is None:
        raise RuntimeError(f"lstmkit's compiled variant kernels could not be built: {reason}")
    return lib


def unsupported(like: torch.Tensor) -> str | None:
    """Why the compiled loops cannot run on tensors like ``like``, or None when they can."""
    if like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return (
            "the compiled loops are CPU kernels for float32 and float64, got "
            f"{like.dtype} on {like.device}"
        )
    return None


def ops_for(like: torch.Tensor):
    """The compiled loops for tensors like ``like``, or None: the python steps, torch calls
    that run on any device and dtype (a GPU, bfloat16; :func:`unsupported` says why)."""
    return None if unsupported(like) is not None else ops()


@functools.cache
def _warn_once(reason: str) -> None:
    warnings.warn(
        "lstmkit: the compiled variant kernels could not be built "
        f"({reason}); the fused backend runs its python steps, which are slower. "
        "Set LSTMKIT_KERNELS=python to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )


def ops_named(steps: str | None, like: torch.Tensor):
    """The loops for the step implementation ``steps`` names: None — :func:`ops_for`
    (``LSTMKIT_KERNELS``); "python" — None; "compiled" — the compiled loops, or an error
    where they cannot run (another device or dtype) or be built."""
    if steps is None:
        return ops_for(like)
    if steps == "python":
        return None
    reason = unsupported(like)
    if reason is not None:
        raise ValueError(reason)
    return _compiled()


def implementation(like: torch.Tensor | None = None) -> str:
    """Which implementation the variant loops run (for tensors like ``like``, by default
    float32 on the CPU): "compiled" or "python"."""
    return "python" if ops_for(torch.empty(0) if like is None else like) is None else "compiled"


@contextmanager
def use(value: str):
    """Run the variant kernels with the given step implementation (tests, benchmarks)."""
    global _choice
    if value not in CHOICES:
        raise ValueError(f"kernels.use: expected one of {', '.join(CHOICES)}, got {value!r}")
    previous, _choice = _choice, value
    try:
        yield
    finally:
        _choice = previous
