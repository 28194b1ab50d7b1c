"""Runbook definitions (the YAML files beside this module) and the code that
loads, exports and executes their steps.

``load_catalogue(path)`` reads every ``*.yaml`` file of a directory and refuses a
bad file with its name and the offending key; ``export_runbooks(catalogue, dir)``
writes them as static HTML and Markdown (``python -m warroom.runbooks export DIR``).
"""

from warroom.runbooks.catalogue import DEFAULT_RUNBOOKS_DIR, Catalogue, load_catalogue, load_runbook

__all__ = ["DEFAULT_RUNBOOKS_DIR", "Catalogue", "load_catalogue", "load_runbook"]
