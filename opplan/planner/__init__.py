"""The bi-level planner: an upper level that places merged stages, a lower level that schedules
them with a MIP solved by Gurobi or HiGHS behind one solver-neutral model."""

from opplan.planner.api import PlannerOptions, solve

__all__ = ["PlannerOptions", "solve"]
