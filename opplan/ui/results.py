"""What the pages say about plans, as plain data: the Home page's headline sentence and metric
cards, the Plan page's cards and solver verdict, chart titles, and which plans break the cap."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opplan.schedule import Plan
from opplan.ui.config import first_cap, peak_of
from opplan.ui.display import Units, schedule_title, units_for
from opplan.ui.plans import baseline_names, baseline_plan, collect_plans

HOME_SCHEDULES = ("1f1b", "dualpipe")   # drawn beside opplan on the Home page


@dataclass(frozen=True)
class Card:
    """One ``st.metric`` card (drawn with a border)."""

    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"
    delta_arrow: str = "auto"
    help: str | None = None


def idle_removed(opplan: Plan, other: Plan) -> float | None:
    """Share of ``other``'s total idle time that opplan removes (negative if it adds idle)."""
    base = sum(other.metrics.bubble)
    if base <= 1e-12:
        return None
    return 1.0 - sum(opplan.metrics.bubble) / base


def reference_name(plans: dict[str, Plan]) -> str | None:
    """The schedule opplan is measured against on Home: the first of DualPipe, 1F1B and then any
    other baseline in ``plans`` that fits the cap (None when none does)."""
    fitting = [n for n in plans if n != "opplan" and plans[n].valid]
    preferred = [n for n in ("dualpipe", "1f1b") if n in fitting]
    return (preferred or fitting or [None])[0]


def best_fitting_baseline(config: dict[str, Any]) -> tuple[str, Plan] | None:
    """The expert schedule with the shortest iteration among those that fit the cap, if any."""
    runs = ((name, baseline_plan(config, name)[0]) for name in baseline_names())
    fitting = [(name, plan) for name, plan in runs if plan is not None and plan.valid]
    return min(fitting, key=lambda item: item[1].makespan) if fitting else None


def home_plans(config: dict[str, Any], opplan: Plan | None) -> tuple[dict[str, Plan], list[tuple[str, str]]]:
    """Home's plans: opplan, 1F1B and DualPipe, and, when neither of those fits the cap, the best
    expert schedule that does (so the headline compares like with like)."""
    plans, skipped = collect_plans(config, ("opplan", *HOME_SCHEDULES), opplan)
    if reference_name(plans) is None:
        best = best_fitting_baseline(config)
        if best is not None:
            plans[best[0]] = best[1]
    return plans, skipped


def _over_cap_note(plans: dict[str, Plan], config: dict[str, Any]) -> str:
    """"DualPipe and 1F1B do not fit this cap (they need …)." for Home's baselines over the cap."""
    units, cap = units_for(config), first_cap(config)
    over = [n for n in HOME_SCHEDULES if n in plans and plans[n].over_cap]
    if not over or cap is None:
        return ""
    if len(over) == 1:
        needs = f"it needs {units.memory(peak_of(plans[over[0]], config))}"
    else:
        needs = "they need " + ", ".join(f"{schedule_title(n)} {units.memory(peak_of(plans[n], config))}"
                                         for n in over)
    verb = "does" if len(over) == 1 else "do"
    return (f"{' and '.join(schedule_title(n) for n in over)} {verb} not fit this cap of {units.memory(cap)} "
            f"per device ({needs}). ")


def headline(plans: dict[str, Plan], config: dict[str, Any]) -> tuple[str, str] | None:
    """Home's one sentence as (``"success"``, ``"warning"`` or ``"info"``, markdown): how much of
    the reference schedule's idle time opplan (``plans["opplan"]``) removes. The reference is an
    expert schedule that fits the cap; baselines over the cap are named as such, never compared."""
    result, reference = plans["opplan"], reference_name(plans)
    note = _over_cap_note(plans, config)
    if reference is None:
        if not note:
            return None
        return "info", (f"{note}No expert schedule fits this cap; opplan's plan does: one iteration takes "
                        f"{units_for(config).time(result.makespan)}.")
    ref_plan = plans[reference]
    units, title = units_for(config), schedule_title(reference)
    removed = idle_removed(result, ref_plan)
    same = "at the same memory" if config.get("caps") else "(no memory cap)"
    fits = ", the best expert schedule that fits," if note and reference not in HOME_SCHEDULES else ""
    if removed is None:
        return "success", f"{note}{title} has no idle time here; opplan matches it."
    if removed >= 0:
        return "success", (f"{note}**opplan removes {removed:.0%} of {title}'s idle time{fits} {same}**: one "
                           f"iteration takes {units.time(result.makespan)} instead of {units.time(ref_plan.makespan)}"
                           + ("." if units.time_unit else " (time in units of F)."))
    return "warning", (f"{note}opplan has {-removed:.0%} more idle time than {title} {same} "
                       "(the solver ran out of time; raise the time limit on the Plan page).")


def peak_card(plan: Plan, config: dict[str, Any]) -> Card:
    """Peak memory per device against the cap."""
    units, cap = units_for(config), first_cap(config)
    label = f"Peak ({units.mem_short})"
    return Card(label, f"{units.scale.to_display(peak_of(plan, config)):.4g}",
                f"cap {units.scale.to_display(cap):.4g}" if cap else "no cap", "off", "off",
                help=f"The most memory any device holds at once (parameters and live activations), in "
                     f"{units.mem_label}, against the cap every schedule is measured at.")


def home_cards(plans: dict[str, Plan], config: dict[str, Any]) -> list[Card | None]:
    """Five cards: opplan's iteration time and bubble ratio (against the reference), its speed-up
    over each Home schedule (None where that schedule does not apply), its peak memory; a sixth,
    exposed communication, when communication has its own stream.

    Labels and deltas stay short (at most about 18 characters) so a 1280-pixel window shows them
    whole; the help text says the rest."""
    units, m = units_for(config), plans["opplan"].metrics
    reference = reference_name(plans)
    ref_m = plans[reference].metrics if reference is not None else None
    ref_title = schedule_title(reference) if reference is not None else ""
    cards: list[Card | None] = [
        Card(f"Iteration{units.time_suffix}", f"{m.makespan:.4g}",
             f"{m.makespan - ref_m.makespan:+.3g}{units.time_suffix}" if ref_m else None, "inverse",
             help=f"opplan's time for one training iteration (makespan){', against ' + ref_title if ref_m else ''}."),
        Card("Bubble ratio", f"{m.bubble_ratio:.1%}",
             f"{100 * (m.bubble_ratio - ref_m.bubble_ratio):+.1f} pp" if ref_m else None, "inverse",
             help="opplan's share of device time left idle"
                  + (f"; the change is in percentage points against {ref_title}." if ref_m else ".")),
    ]
    cards += [Card(f"vs {schedule_title(name)}", f"{plans[name].makespan / m.makespan:.2f}×",
                   "over the cap" if plans[name].over_cap else None, "off", "off",
                   help=f"opplan's speed-up: {schedule_title(name)}'s iteration time ÷ opplan's.")
              if name in plans else None for name in HOME_SCHEDULES]
    return [*cards, peak_card(plans["opplan"], config), *exposed_comm_cards(plans["opplan"], config, plans.get(reference))]


def exposed_comm_cards(plan: Plan, config: dict[str, Any], reference: Plan | None = None) -> list[Card]:
    """With communication on its own stream (layer or operator granularity): the communication no
    computation hides, worst device, against ``reference``'s when given. None without streams."""
    if not plan.problem.has_comm_streams:
        return []
    units = units_for(config)
    exposed = max(plan.metrics.exposed_communication, default=0.0)
    delta = None
    if reference is not None and reference.problem.has_comm_streams:
        delta = f"{exposed - max(reference.metrics.exposed_communication, default=0.0):+.3g}{units.time_suffix}"
    return [Card(f"Exposed comm{units.time_suffix}", f"{exposed:.4g}", delta, "inverse",
                 help="The longest time any device's communication stream (the all-to-all) runs while its compute "
                      "stream idles: communication no computation hides.")]


def cards_caption(plans: dict[str, Plan]) -> str | None:
    """The line under Home's cards naming what the changes are measured against."""
    reference = reference_name(plans)
    return None if reference is None else (f"Changes against {schedule_title(reference)}; "
                                           "hover a card's ? for what it measures.")


def plan_cards(plan: Plan, config: dict[str, Any]) -> list[Card]:
    """The Plan page's cards: iteration time, bubble ratio, largest idle per device, peak memory, and
    exposed communication when communication has its own stream."""
    units, m = units_for(config), plan.metrics
    return [Card(f"Iteration time{units.time_suffix}", f"{m.makespan:.4g}"),
            Card("Bubble ratio", f"{m.bubble_ratio:.1%}"),
            Card(f"Idle per device, max{units.time_suffix}", f"{max(m.bubble):.4g}"),
            peak_card(plan, config), *exposed_comm_cards(plan, config)]


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
    """One Gantt panel title per plan: schedule, iteration time, bubble ratio (and, with
    ``mark_invalid``, ⚠ when the plan breaks the memory cap or another rule)."""
    return [f"<b>{schedule_title(n)}</b> · iteration {units.time(p.makespan)} · bubble ratio "
            f"{p.metrics.bubble_ratio:.1%}" + _flag(p, mark_invalid) for n, p in plans.items()]


def _flag(plan: Plan, mark_invalid: bool) -> str:
    if plan.valid or not mark_invalid:
        return ""
    return " · ⚠ over the cap" if plan.over_cap else " · ⚠ invalid"


def over_cap_names(plans: dict[str, Plan]) -> list[str]:
    """Titles of the schedules whose plan breaks the memory cap."""
    return [schedule_title(n) for n, p in plans.items() if p.over_cap]


def has_links(plans: Iterable[Plan]) -> bool:
    """True when any plan has transfers on links (model graphs)."""
    return any(t.is_transfer for p in plans for t in p.tasks)
