"""The embedded arithmetic world: seeded multi-step problems (``world``), the ground-truth
step checker (``checker``), the byte-level tokenizer (``tokenizer``), the tiny policy's
trainer (``train_policy``), a ProcessBench-format exporter (``export``) and a fake policy and
PRM for model-free runs (``fakes``)."""
