"""What the pages say about plans, as plain data: the Home page's headline sentence and metric
cards, the Plan page's cards and solver verdict, chart titles, and which plans break the cap."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opplan.schedule import Plan
from opplan.ui.config import first_cap, peak_of
from opplan.ui.display import Units, schedule_title, units_for

HOME_SCHEDULES = ("1f1b", "dualpipe")   # drawn beside opplan on the Home page


@dataclass(frozen=True)
class Card:
    """One ``st.metric`` card (drawn with a border)."""

    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"
    delta_arrow: str = "auto"


def idle_removed(opplan: Plan, other: Plan) -> float | None:
    """Share of ``other``'s total idle time that opplan removes (negative if it adds idle)."""
    base = sum(other.metrics.bubble)
    if base <= 1e-12:
        return None
    return 1.0 - sum(opplan.metrics.bubble) / base


def reference_name(plans: dict[str, Plan]) -> str:
    """The schedule opplan is measured against on Home: DualPipe where it applies, else 1F1B."""
    return "dualpipe" if "dualpipe" in plans else "1f1b"


def headline(plans: dict[str, Plan], config: dict[str, Any]) -> tuple[str, str] | None:
    """Home's one sentence as (``"success"`` or ``"warning"``, markdown): how much of the
    reference schedule's idle time opplan (``plans["opplan"]``) removes. None without a reference."""
    result, reference = plans["opplan"], reference_name(plans)
    ref_plan = plans.get(reference)
    if ref_plan is None:
        return None
    units, title = units_for(config), schedule_title(reference)
    removed = idle_removed(result, ref_plan)
    same = "at the same memory" if config.get("caps") else "(no memory cap)"
    if removed is None:
        return "success", f"{title} has no idle time here; opplan matches it."
    if removed >= 0:
        return "success", (f"**opplan removes {removed:.0%} of {title}'s idle time {same}**: one iteration takes "
                           f"{units.time(result.makespan)} instead of {units.time(ref_plan.makespan)}"
                           + ("." if units.time_unit else " (time in units of F)."))
    return "warning", (f"opplan has {-removed:.0%} more idle time than {title} {same} "
                       "(the solver ran out of time; raise the time limit on the Plan page).")


def peak_card(plan: Plan, config: dict[str, Any]) -> Card:
    """Peak memory per device against the cap."""
    units, cap = units_for(config), first_cap(config)
    return Card(f"Peak memory ({units.mem_short})", f"{peak_of(plan, config) / units.mem_unit_bytes:.4g}",
                f"cap {cap / units.mem_unit_bytes:.4g}" if cap else "no cap", "off", "off")


def home_cards(plans: dict[str, Plan], config: dict[str, Any]) -> list[Card | None]:
    """Five cards: opplan's iteration time and bubble ratio (against the reference), its speed-up
    over each Home schedule (None where that schedule does not apply), its peak memory."""
    units, m = units_for(config), plans["opplan"].metrics
    reference = reference_name(plans)
    ref_m = plans[reference].metrics if reference in plans else None
    versus = f" vs {schedule_title(reference)}"
    cards: list[Card | None] = [
        Card(f"Iteration time (opplan{', ' + units.time_unit if units.time_unit else ''})", f"{m.makespan:.4g}",
             f"{m.makespan - ref_m.makespan:+.4g}{versus}" if ref_m else None, "inverse"),
        Card("Bubble ratio (opplan)", f"{m.bubble_ratio:.1%}",
             f"{100 * (m.bubble_ratio - ref_m.bubble_ratio):+.1f} pp{versus}" if ref_m else None, "inverse"),
    ]
    cards += [Card(f"Speed-up over {schedule_title(name)}", f"{plans[name].makespan / m.makespan:.2f}×")
              if name in plans else None for name in HOME_SCHEDULES]
    return [*cards, peak_card(plans["opplan"], config)]


def plan_cards(plan: Plan, config: dict[str, Any]) -> list[Card]:
    """The Plan page's four cards: iteration time, bubble ratio, largest idle per device, peak memory."""
    units, m = units_for(config), plan.metrics
    return [Card(f"Iteration time{units.time_suffix}", f"{m.makespan:.4g}"),
            Card("Bubble ratio", f"{m.bubble_ratio:.1%}"),
            Card(f"Idle per device, max{units.time_suffix}", f"{max(m.bubble):.4g}"),
            peak_card(plan, config)]


def provenance_line(plan: Plan, elapsed: float) -> str:
    """Home's caption on how opplan's plan was found (``elapsed``: when the solver gave no time)."""
    prov = plan.provenance
    return (f"opplan: placement **{prov.placement or '?'}**, solver **{prov.solver or '?'}** "
            f"({prov.solver_reason or ''}), status **{prov.status.value if prov.status else '?'}**, "
            f"gap {100 * (prov.gap or 0):.1f}% to the lower bound {prov.lower_bound or 0:.4g}, "
            f"{prov.solve_seconds or elapsed:.1f} s.")


def verdict(plan: Plan, units: Units) -> tuple[str, str]:
    """The Plan page's two lines: a status badge with the gap and placement, and which solver ran and why."""
    prov = plan.provenance
    status = prov.status.value if prov.status else "?"
    badge = {"optimal": ":green-badge[:material/check: optimal]", "feasible": ":orange-badge[feasible]"}.get(
        status, f":gray-badge[{status}]")
    gap = prov.gap or 0.0
    return (f"{badge} gap **{gap:.1%}** to the lower bound {units.time(prov.lower_bound or 0.0)}; "
            f"placement **{prov.placement or '?'}**, warm start {prov.warm_start or '?'}, "
            f"{prov.solve_seconds or 0.0:.1f} s.",
            f"**Solver:** {prov.solver or '?'} — {prov.solver_reason or ''}")


def gantt_titles(plans: dict[str, Plan], units: Units, mark_invalid: bool = False) -> list[str]:
    """One Gantt panel title per plan: schedule, iteration time, bubble ratio (and ⚠ when invalid)."""
    return [f"<b>{schedule_title(n)}</b> · iteration {units.time(p.makespan)} · bubble ratio "
            f"{p.metrics.bubble_ratio:.1%}" + ("" if p.valid or not mark_invalid else " · ⚠ over the cap")
            for n, p in plans.items()]


def over_cap_names(plans: dict[str, Plan]) -> list[str]:
    """Titles of the schedules whose plan breaks the memory cap."""
    return [schedule_title(n) for n, p in plans.items() if p.over_cap]


def has_links(plans: Iterable[Plan]) -> bool:
    """True when any plan has transfers on links (model graphs)."""
    return any(t.is_transfer for p in plans for t in p.tasks)
