"""Task environments: data the engine is run on, not part of the engine.

An environment brings its problems, a ground-truth step checker, and whatever trains or
fakes a model for it. The engine core (types, protocols, strategies, generators, run,
results) imports none of it; it reaches an environment through config (``_target_`` nodes,
``dataset=...``) and the ``Generator`` / ``Scorer`` / ``Checker`` protocols.
"""
