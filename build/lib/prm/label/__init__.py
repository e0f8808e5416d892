"""Stage 2 of the PRM data pipeline: step labels for sampled solutions.

Labellers (each implements ``prm.label.records.Labeller``):

- ``mc``: Monte Carlo estimation (Math-Shepherd, arXiv 2312.08935), ``prm.label.mc``;
- ``judge``: an LLM critiques the solution paragraph by paragraph, ``prm.label.judge``;
- ``calculator``: the arithmetic world's step calculator, an imperfect judge,
  ``prm.label.calculator``;
- ``consensus``: MC and a judge must agree on the first error (arXiv 2501.07301, section 3),
  ``prm.label.consensus``.

``python -m prm.label labeller=mc|judge|judge_local|calculator|consensus`` runs one of them
over a samples file (see ``prm.label.__main__``).
"""
