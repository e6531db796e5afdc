"""The dashboard's logic, kept out of its pages (``app.py`` and ``views/*.py``).

A page draws widgets, makes one call into this package and renders what it gets back. Pure
modules never import Streamlit, so they run and are tested without a server:

- ``models``   sample models, the parse cache, the current model in the store, model tables
- ``config``   defaults and the plain JSON-able scenario config; ``scenario_from_config``
- ``display``  how a scenario's numbers read (``Units``), schedule titles, the scenario summary
- ``plans``    cached baseline runs and the session's latest opplan plan
- ``caps``     memory-cap modes, cap resolution and the per-device speed and cap table
- ``jobs``     planner runs on worker threads, read by a polling page fragment
- ``sweep``    the bubble-versus-memory trade-off: baseline points and the opplan sweep
- ``results``  what the pages say about plans: headline, metric cards, solver verdict, titles
- ``tables``   metrics tables, CSV, plan JSON, figure exports, preset and fit-the-cap tables

Only two modules import Streamlit: ``state`` (the session store and ``widget``) and
``components`` (the page pieces several pages draw identically). Functions of pure modules that
read or change the session's values take the store, a plain dict, as their first argument.
"""
