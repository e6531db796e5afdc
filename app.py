"""The dashboard's entry point (`streamlit run app.py`): its pages, Home first.

``st.navigation`` names the first sidebar entry "Home" (the classic ``pages/`` mechanism would
call it "app" after this file). The pages are the scripts in ``views/``, not ``pages/``: Streamlit
still serves a ``pages/`` folder the classic way when a fresh server's first visitor opens a deep
link such as ``/Compare`` (measured), bypassing this file. Each page is thin: widgets → one call
into ``opplan.ui`` → render.
"""
from __future__ import annotations

import streamlit as st

from opplan.ui.components import scenario_sidebar

PAGES = [
    st.Page("views/0_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/1_Model.py", title="Model", icon=":material/account_tree:"),
    st.Page("views/2_Cluster.py", title="Cluster", icon=":material/dns:"),
    st.Page("views/3_Plan.py", title="Plan", icon=":material/calculate:"),
    st.Page("views/4_Compare.py", title="Compare", icon=":material/compare_arrows:"),
]

page = st.navigation(PAGES)
# after st.navigation: the page config set before it does not reach the pages (measured: centered)
st.set_page_config(page_title=f"{page.title} · opplan", page_icon="🧩", layout="wide")
scenario_sidebar()
page.run()
