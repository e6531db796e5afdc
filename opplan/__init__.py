"""opplan: automatic operator-level parallelism planning (pipeline schedules as a MIP)."""
from opplan.errors import OpplanError

__all__ = ["OpplanError"]
__version__ = "0.1.0"
