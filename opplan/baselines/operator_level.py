"""Hand-designed schedules run at operator level, the way their implementations run them.

A schedule's per-rank program names schedule stages (``3F0``). At operator level every stage is a
chain of units (``opplan.granularity``): compute units on the device's compute stream, all-to-all
units on its communication stream. A stage's pass runs its units one after another — forward in
unit order, backward in reverse — and a rank runs its program's entries one after another: an
entry starts only once the previous one has ended on every stream (the order's fences), so a
chunk's all-to-all holds up the chunk after it, as in an implementation whose all-to-all is
blocking. Only inside DualPipe's overlapped forward-backward pairs do two chunks interleave, so
that the all-to-all of one micro-batch hides behind the compute of the other; each pair gets the
interleaving that is shortest on its own (DualPipe's best case).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from opplan.actions import Block, ComputeTask, Entry, Pass, entry_names
from opplan.errors import OpplanError
from opplan.problem import Problem
from opplan.schedule import Order

Step = tuple[str, ComputeTask, float]          # (resource, unit task, duration)
MAX_INTERLEAVINGS = 5000                       # beyond this a pair alternates its compute units


def unit_steps(problem: Problem, task: ComputeTask) -> list[Step]:
    """The unit tasks one stage-level task stands for, in the order the stage runs them."""
    units = problem.units_of(task.stage)
    if not units:
        raise OpplanError(f"schedule stage {task.stage} has no units in this problem")
    if task.pass_ is not Pass.FORWARD:
        units = tuple(reversed(units))
    steps = []
    for u in units:
        st = problem.stages[u]
        duration = {Pass.FORWARD: st.forward, Pass.INPUT_GRAD: st.input_grad, Pass.WEIGHT_GRAD: st.weight_grad,
                    Pass.FULL_BACKWARD: st.input_grad + st.weight_grad}[task.pass_]
        steps.append((problem.resource_of(u), ComputeTask(u, task.pass_, task.microbatch), duration))
    return steps


def _pair_length(steps: Sequence[tuple[int, Step]]) -> float:
    """Length of one interleaving of two chains run alone: each chain in order, one task at a
    time per resource, every task as early as its chain and its resource allow."""
    chain_end = [0.0, 0.0]
    free: dict[str, float] = {}
    for chain, (resource, _, duration) in steps:
        start = max(chain_end[chain], free.get(resource, 0.0))
        chain_end[chain] = free[resource] = start + duration
    return max(chain_end)


def _merge(first: Sequence[Step], second: Sequence[Step], pattern: Sequence[int]) -> list[tuple[int, Step]]:
    chains = (iter(first), iter(second))
    return [(c, next(chains[c])) for c in pattern]


def best_interleaving(first: Sequence[Step], second: Sequence[Step]) -> tuple[int, ...]:
    """Which chain each position of the merged sequence takes (0 or 1): the merge of two unit
    chains, each kept in order, that finishes soonest on its own."""
    n, k = len(first) + len(second), len(first)
    if math.comb(n, k) > MAX_INTERLEAVINGS:      # too many merges to try: alternate
        return tuple(c for a, b in itertools.zip_longest(first, second)
                     for c, s in ((0, a), (1, b)) if s is not None)
    best, best_length = tuple([0] * k + [1] * (n - k)), math.inf
    for slots in itertools.combinations(range(n), k):
        chosen = set(slots)
        pattern = tuple(0 if i in chosen else 1 for i in range(n))
        length = _pair_length(_merge(first, second, pattern))
        if length < best_length - 1e-12:
            best, best_length = pattern, length
    return best


def unit_order(problem: Problem, programs: Sequence[Sequence[Entry]]) -> Order:
    """An operator-level order from per-rank stage-level programs (records)."""
    sequences: dict[str, list[str]] = {}
    for d, device in enumerate(problem.devices):
        sequences[device.name] = []
        for resource in {problem.resource_of(u) for u in problem.stages_on(d)}:
            sequences.setdefault(resource, [])
    patterns: dict[tuple[int, Pass, int, Pass], tuple[int, ...]] = {}   # same two stages, same merge
    fences: list[tuple[str, str]] = []
    for program in programs:
        previous_ends: list[str] = []          # the last unit of each chain of the previous entry
        for entry in program:
            if isinstance(entry, Block):
                if len(entry.members) != 2:
                    raise OpplanError(f"an overlapped block pairs two tasks, got {entry}")
                chains = [unit_steps(problem, member) for member in entry.members]
                a, b = entry.members
                key = (a.stage, a.pass_, b.stage, b.pass_)
                if key not in patterns:
                    patterns[key] = best_interleaving(*chains)
                steps = [step for _, step in _merge(*chains, patterns[key])]
            elif isinstance(entry, ComputeTask):
                chains = [unit_steps(problem, entry)]
                steps = chains[0]
            else:
                raise OpplanError(f"a schedule program holds compute tasks and blocks, got {entry}")
            starts = [_task_name(chain[0]) for chain in chains]
            fences += [(end, start) for end in previous_ends for start in starts]
            previous_ends = [_task_name(chain[-1]) for chain in chains]
            for resource, task, _ in steps:
                sequences[resource].append(str(task))
    return Order({r: tuple(seq) for r, seq in sequences.items() if seq}, backward="split", fences=tuple(fences))


def _task_name(step: Step) -> str:
    """A task the step stands for (a full backward is its input and weight gradients, run as one block)."""
    return entry_names(str(step[1]), split_backward=True)[0]
