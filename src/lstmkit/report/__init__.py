"""What a run leaves behind: the run directory (:mod:`lstmkit.report.rundir`)."""

from lstmkit.report.rundir import RunDir

__all__ = ["RunDir"]
