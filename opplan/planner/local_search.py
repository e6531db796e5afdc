"""Order local search: an anytime improver where the MIP is too large to help within the time.

A move takes one entry of one device's sequence and moves it a few places earlier or later, or
splits a block (an overlapped F&B pair or a full backward) into its tasks. The
simulator times the new order (an order that contradicts the dependencies is rejected by its
deadlock check) and memory is checked from the timed tasks; a move is kept when the makespan does
not grow. Sideways moves let the search cross plateaus, which are common in pipeline schedules.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable

from opplan.errors import OpplanError
from opplan.metrics import peak_activation_bytes
from opplan.planner.bounds import memory_room
from opplan.problem import Problem
from opplan.schedule import Order, parse_entry
from opplan.simulate import simulate
from opplan.tasks import build_task_graph


def _evaluate(problem: Problem, order: Order, tg, rooms: list[float]) -> float:
    """Makespan of ``order``, or infinity when it deadlocks or breaks a memory cap."""
    try:
        tasks = simulate(problem, order, tg)
    except OpplanError:
        return float("inf")
    peaks = peak_activation_bytes(problem, tasks)
    if any(p > r * (1 + 1e-9) + 1e-9 for p, r in zip(peaks, rooms)):
        return float("inf")
    return max(t.end for t in tasks)


def improve_order(problem: Problem, order: Order, seconds: float, seed: int = 0, max_shift: int = 3,
                  floor: float = 0.0, should_stop: Callable[[], bool] | None = None) -> tuple[Order, float]:
    """The best order found from ``order`` within ``seconds``, and its makespan. It stops early once
    the makespan meets ``floor`` (a proven lower bound: nothing better exists) or ``should_stop()``."""
    rng = random.Random(seed)
    tg = build_task_graph(problem, order.backward)
    rooms = [memory_room(problem, d) for d in range(problem.num_devices)]
    sequences = {r: list(seq) for r, seq in order.sequences.items()}
    best = _evaluate(problem, order, tg, rooms)
    resources = [r for r, seq in sequences.items() if len(seq) > 1]
    if not resources or best == float("inf"):
        return order, best
    deadline = time.perf_counter() + seconds
    current = best
    best_sequences = {r: list(s) for r, s in sequences.items()}
    while time.perf_counter() < deadline and best > floor + 1e-9 * max(1.0, floor):
        if should_stop is not None and should_stop():
            break
        r = rng.choice(resources)
        seq = sequences[r]
        i = rng.randrange(len(seq))
        members = parse_entry(seq[i], order.backward)
        if len(members) > 1 and rng.random() < 0.5:
            # split a block (an overlapped F&B pair, or a full backward) into its tasks
            trial = seq[:i] + list(members) + seq[i + 1:]
            sequences[r] = trial
            value = _evaluate(problem, Order({k: tuple(v) for k, v in sequences.items()}, order.backward), tg, rooms)
            if value <= current + 1e-9:
                current = value
                if value < best - 1e-9:
                    best, best_sequences = value, {k: list(v) for k, v in sequences.items()}
            else:
                sequences[r] = seq
            continue
        j = min(len(seq) - 1, max(0, i + rng.choice([k for k in range(-max_shift, max_shift + 1) if k])))
        if i == j:
            continue
        entry = seq.pop(i)
        seq.insert(j, entry)
        value = _evaluate(problem, Order({k: tuple(v) for k, v in sequences.items()}, order.backward), tg, rooms)
        if value <= current + 1e-9:
            current = value
            if value < best - 1e-9:
                best = value
                best_sequences = {k: list(v) for k, v in sequences.items()}
        else:
            seq.pop(j)
            seq.insert(i, entry)
    return Order({k: tuple(v) for k, v in best_sequences.items()}, order.backward), best
