"""Plotly figures for plans, models and solver runs: pure functions, no Streamlit.

Each function takes opplan objects (or plain data) and returns a ``plotly.graph_objects.Figure``,
so the dashboard, exports and tests all draw the same thing.
"""
from opplan.viz.charts import bubble_figure, pareto_figure, progress_figure
from opplan.viz.dag import dag_dot, device_legend
from opplan.viz.gantt import PASS_COLORS, gantt_figure
from opplan.viz.memory import memory_figure

__all__ = ["PASS_COLORS", "bubble_figure", "dag_dot", "device_legend", "gantt_figure", "memory_figure", "pareto_figure",
           "progress_figure"]
