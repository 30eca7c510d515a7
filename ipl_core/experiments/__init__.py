"""The experiment machinery: it runs the algorithms of ``ipl_core`` over grids of settings and seeds and
turns the runs into the tables the book shows.

The modules: ``studies`` (each study's grid and settings per profile), ``run`` (the runner,
``python -m ipl_core.experiments.run <study> --profile <p>``), ``aggregate`` (runs into tables),
``intervals`` (statistics over seeds), ``report`` (what the chapters show of a run: estimates,
comparisons and figures with every seed), ``results`` (loading a study's tables for a chapter), ``variants``
(the columns of the paper's tables as changes to a preset), ``efficiency`` and ``locomotion`` (the cells of
the MetaWorld budget/sensitivity and locomotion studies) and ``stored`` (the settings and compute time of
each stored online run). The library below never imports this package. Taught in the appendix "Running
the experiments at scale".
"""
