"""The process reward model: scoring (``prm.scoring``), the embedded PRM (``prm.arith_model``),
step labelling and training. ``search`` never imports ``prm``; a PRM reaches the engine
through ``search.protocols.Scorer`` and the ``_target_`` of its config."""
