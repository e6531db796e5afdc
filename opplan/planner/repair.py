"""Cap-aware hand-designed orders: a baseline's order, changed as little as needed to fit the caps.

The hand-designed patterns are excellent where their memory fits and unusable one unit below it,
where list scheduling falls back to one micro-batch at a time. This repair keeps a pattern's shape
and degrades it gracefully as the cap shrinks: walking each device's sequence, a weight gradient
waiting further on is pulled forward when a forward would not fit (W is deferred only while memory
allows), and a forward that still does not fit is held back, with everything of its micro-batch on
that stage, until enough memory is freed (fewer warm-up forwards). Memory on a device depends only on
the order of its own compute sequence (activations are taken at a forward's start and returned at
its weight gradient's end), so the repaired sequences fit by construction; the simulator then
times them and the validator checks the whole plan, as for every other producer.
"""
from __future__ import annotations

import bisect
import heapq

from opplan.actions import ComputeTask, Pass
from opplan.planner.bounds import memory_room
from opplan.problem import Problem
from opplan.schedule import Order, parse_entry

_TOLERANCE = 1e-9


def fit_to_caps(problem: Problem, order: Order, reserve: bool = False) -> Order | None:
    """``order`` with each device's compute sequence fitted to its cap; None when a sequence
    cannot be fitted. With ``reserve``, a micro-batch's first forward on a device takes the room of
    its later stages there too (a model folded onto the devices, as in DualPipe's layout, comes back
    to a device it has left: without the reservation its return can find the room taken)."""
    from opplan.planner.heuristic import later_stages_on_same_device

    later = later_stages_on_same_device(problem) if reserve else [[] for _ in problem.stages]
    sequences = dict(order.sequences)
    for d, device in enumerate(problem.devices):
        seq = order.sequences.get(device.name)
        if not seq:
            continue
        fitted = _fit_sequence(problem, seq, memory_room(problem, d), order.backward, later)
        if fitted is None:
            fitted = _with_fewer_warmup_forwards(problem, seq, memory_room(problem, d), order.backward, later)
        if fitted is None:
            return None
        sequences[device.name] = fitted
    return Order(sequences, order.backward)


def _with_fewer_warmup_forwards(problem: Problem, seq: tuple[str, ...], room: float, backward: str,
                                later: list[list[int]]) -> tuple[str, ...] | None:
    """A device holding two stages (a folded layout) can fill its memory with the warm-up forwards of
    the stage it starts with, leaving no room for the other: allow that stage fewer micro-batches in
    flight, the most that lets the whole sequence fit."""
    first = ComputeTask.parse(parse_entry(seq[0], backward)[0]).stage
    count = sum(1 for e in seq for name in parse_entry(e, backward) if name.startswith(f"{first}F"))
    for in_flight in range(count - 1, 0, -1):
        fitted = _fit_sequence(problem, seq, room, backward, later, first, in_flight)
        if fitted is not None:
            return fitted
    return None


class _Entry:
    """One order entry with what it takes (forwards) and gives back (weight gradients) on its device."""

    __slots__ = ("charged", "done", "forwards", "index", "is_lone_w", "keys", "needs", "tasks", "text")

    def __init__(self, problem: Problem, text: str, backward: str, index: float) -> None:
        self.text = text
        self.index = index           # position in the original sequence: held entries keep this order
        self.tasks = [ComputeTask.parse(name) for name in parse_entry(text, backward)]
        self.forwards = {(t.stage, t.microbatch) for t in self.tasks if t.pass_ is Pass.FORWARD}
        self.needs = sum(problem.stages[s].activation_bytes for s, _ in self.forwards)
        self.keys = {(t.stage, t.microbatch) for t in self.tasks}
        self.is_lone_w = len(self.tasks) == 1 and self.tasks[0].pass_ is Pass.WEIGHT_GRAD
        self.charged = 0.0           # bytes taken when placed (with the room reserved for later stages)
        self.done = False

    def frees(self, problem: Problem) -> float:
        return sum(problem.stages[t.stage].activation_bytes for t in self.tasks if t.pass_.frees_activations)


def _fit_sequence(problem: Problem, seq: tuple[str, ...], room: float, backward: str,
                  later: list[list[int]], limit_stage: int | None = None, in_flight: int = 0) -> tuple[str, ...] | None:
    """One device's sequence fitted to ``room`` bytes of activations; ``limit_stage`` runs at most
    ``in_flight`` micro-batches at a time (fewer warm-up forwards, leaving room for the device's other stage)."""
    queue = [_Entry(problem, text, backward, i) for i, text in enumerate(seq)]
    if sum(e.needs for e in queue) <= room * (1 + _TOLERANCE) + _TOLERANCE:
        return seq    # the whole sequence fits: nothing to change
    limit = room * (1 + _TOLERANCE) + _TOLERANCE
    flying = 0   # micro-batches of ``limit_stage`` between their forward and their weight gradient
    reserved: set[tuple[int, int]] = set()    # (stage, micro-batch) whose room an earlier forward took
    placed: list[_Entry] = []
    held: list[_Entry] = []                   # entries held back, in their original order
    held_forwards: set[tuple[int, int]] = set()   # (stage, micro-batch) of the forwards held back
    held_stages: dict[int, int] = {}              # stage -> forwards of it held back
    lone_w = {(e.tasks[0].stage, e.tasks[0].microbatch): e for e in queue if e.is_lone_w}
    pullable: list[tuple[float, int, _Entry]] = []   # heap of lone weight gradients whose input gradient ran
    front: list[_Entry] = []                  # a split block's members, next in line
    live = 0.0
    pos = 0

    def needs(e: _Entry) -> float:
        return sum(problem.stages[s].activation_bytes + sum(problem.stages[t].activation_bytes for t in later[s])
                   for s, m in e.forwards if (s, m) not in reserved)

    def fits(e: _Entry) -> bool:
        if any(s == limit_stage for s, _ in e.forwards) and flying >= in_flight:
            return False
        return live + needs(e) <= limit

    def place(e: _Entry) -> None:
        nonlocal live, flying
        flying += sum(1 for s, _ in e.forwards if s == limit_stage)
        flying -= sum(1 for t in e.tasks if t.stage == limit_stage and t.pass_.frees_activations)
        e.charged = needs(e)
        placed.append(e)
        live += e.charged - e.frees(problem)
        for s, m in e.forwards:
            reserved.discard((s, m))
            reserved.update((t, m) for t in later[s])
        e.done = True
        for t in e.tasks:
            w = lone_w.get((t.stage, t.microbatch)) if t.pass_ is Pass.INPUT_GRAD else None
            if w is not None and not w.done:
                heapq.heappush(pullable, (w.index, id(w), w))

    def blocked(e: _Entry) -> bool:
        """Its micro-batch waits on a held forward, or it would overtake a held forward of its stage."""
        return any(k in held_forwards for k in e.keys) or any(held_stages.get(s, 0) for s, _ in e.forwards)

    def pull_weight_gradients(until: _Entry) -> None:
        """Run waiting weight gradients (their input gradient already ran) until ``until`` fits."""
        while pullable and not fits(until):
            _, _, w = heapq.heappop(pullable)
            if not w.done:
                place(w)

    def release_held() -> None:
        """Entries held back go, in their order, as soon as memory and their own forward allow: an
        entry behind a held forward of its stage or micro-batch waits; the first that finds no
        memory stops the rest (they would overtake it)."""
        k = 0
        seen_stages: set[int] = set()
        seen_keys: set[tuple[int, int]] = set()
        while k < len(held):
            e = held[k]
            if e.done:                 # a weight gradient pulled forward while it was held
                unhold(held.pop(k))
                continue
            if any(key in seen_keys for key in e.keys) or any(s in seen_stages for s, _ in e.forwards):
                k += 1
                continue
            if not fits(e):
                pull_weight_gradients(e)
            if not fits(e):
                if live + needs(e) > limit:
                    return
                seen_keys.update(e.forwards)          # held by its stage's in-flight limit only
                seen_stages.update(s for s, _ in e.forwards)
                k += 1
                continue
            unhold(held.pop(k))
            place(e)
            k, seen_stages, seen_keys = 0, set(), set()

    def hold(e: _Entry) -> None:
        bisect.insort(held, e, key=lambda h: h.index)
        held_forwards.update(e.forwards)
        for s, _ in e.forwards:
            held_stages[s] = held_stages.get(s, 0) + 1

    def unhold(e: _Entry) -> None:
        held_forwards.difference_update(e.forwards)
        for s, _ in e.forwards:
            held_stages[s] -= 1

    while front or pos < len(queue):
        if front:
            e = front.pop(0)
        else:
            e = queue[pos]
            pos += 1
        release_held()
        if e.done:
            continue      # a weight gradient pulled forward (perhaps just now, for a held forward)
        if not blocked(e) and not fits(e):
            pull_weight_gradients(e)
        if len(e.tasks) > 1 and (blocked(e) or not fits(e)):
            # a block (e.g. an overlapped F&B pair) that cannot run whole: run its members apart,
            # what frees memory first, so a held member does not hold the others back
            members = sorted(e.tasks, key=lambda t: t.pass_ is Pass.FORWARD)
            front[:0] = [_Entry(problem, str(t), backward, e.index + 1e-3 * (n + 1)) for n, t in enumerate(members)]
            continue
        if blocked(e) or not fits(e):
            hold(e)
            continue
        place(e)
    release_held()
    return None if held else tuple(e.text for e in placed)
