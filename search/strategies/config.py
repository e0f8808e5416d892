"""The strategy config: one flat schema for every search strategy.

One dataclass backs the whole ``strategy`` group, so ``strategy=beam`` (or ``+strategy=beam``)
merges ``conf/strategy/beam.yaml`` over the same schema and a typo fails at the command line.
Which strategy reads which field is ``FIELDS_READ`` (docs/strategies.md says what each one
spends). A field set on the command line that the chosen strategy does not read is refused
(``check_fields_set``: ``strategy.num_simulations=64`` without ``+strategy=mcts`` would
otherwise run best-of-N as if it had been heard); the fields a strategy's own YAML sets are
not checked.

Paper symbols: ``n`` is N (the budget, number of final candidates), ``beam_width`` is M
(children per kept beam, Snell et al. 2024, arXiv 2408.03314), ``lookahead`` is k;
``weight_temperature`` is the temperature of particle filtering's log-weights (Puri et al.
2025, arXiv 2502.01618) and ``stop_confidence`` the threshold C of adaptive sampling's
stopping rule (Aggarwal et al. 2023, arXiv 2305.11860).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from search.inputs import InputError
from search.selection import Select


class StrategyName(str, Enum):
    best_of_n = "best_of_n"
    beam = "beam"
    dvts = "dvts"
    mcts = "mcts"
    particle_filtering = "particle_filtering"
    adaptive_best_of_n = "adaptive_best_of_n"


class MctsFinal(str, Enum):
    """How MCTS ranks its finished paths; the top one is the prediction."""

    most_visited = "most_visited"  # visits, then value
    best_value = "best_value"  # value (the path's aggregated PRM score), then visits


class Prior(str, Enum):
    """The prior P of PUCT over the children of one expansion."""

    uniform = "uniform"  # 1 / number of children
    score = "score"  # each child's aggregated PRM score, normalised over its siblings


_NEEDS_SCORER = {
    StrategyName.beam,
    StrategyName.dvts,
    StrategyName.mcts,
    StrategyName.particle_filtering,
}
_WIDTH_STRATEGIES = {StrategyName.beam, StrategyName.dvts}


_SEARCH = ("max_steps", "save_trees")
_WIDTH = ("beam_width", "lookahead", "lookahead_temperature", "prune", "select", *_SEARCH)
# the fields each strategy reads besides name, n and batch_size (docs/strategies.md); the
# tree strategies (max_steps) keep trees (save_trees), best-of-N makes none
FIELDS_READ: dict[StrategyName, tuple[str, ...]] = {
    StrategyName.best_of_n: ("select",),
    StrategyName.beam: _WIDTH,
    StrategyName.dvts: _WIDTH,
    StrategyName.mcts: (
        "num_simulations",
        "extra_simulations",
        "children_per_expansion",
        "c_puct",
        "prior",
        "mcts_final",
        *_SEARCH,
    ),
    StrategyName.particle_filtering: (
        "weight_temperature",
        "ess_threshold",
        "gibbs_iterations",
        "select",
        *_SEARCH,
    ),
    StrategyName.adaptive_best_of_n: ("samples_per_round", "stop_confidence", "select"),
}
_READ_BY_ALL = ("name", "n", "batch_size")


@dataclass
class StrategyConfig:
    """Knobs of every strategy (mutable: Hydra overrides it).

    ``select`` is the pick of best_of_n, beam, dvts, particle_filtering and
    adaptive_best_of_n (``None``: ``weighted``, the PRM-weighted vote, when a scorer is
    configured, ``majority`` otherwise; adaptive_best_of_n also stops by that vote, so it
    takes ``majority`` or ``weighted`` only); mcts picks by ``mcts_final`` instead. Every
    result reports all the picks in ``SearchResult.predictions`` either way.
    ``prune`` is how beam and dvts rank the children of a depth: ``weighted`` (default) by
    the summed scores of the identical children (the PRM-weighted vote applied to each step,
    ``search.strategies.tree.prune_keys``), ``prm`` by each child's own score.
    ``max_steps`` caps the search depth (step generations along one path) of beam, dvts and
    mcts; 10 is enough for the arithmetic world (at most 6 operations and the answer step),
    raise it (e.g. 40) for MATH-style solutions. ``batch_size`` caps the prefixes sent in one
    generate or score call; a search depth is split into several calls only above it.
    ``lookahead_temperature`` is the temperature of lookahead rollouts (0: greedy, as in
    Snell et al.), whatever the policy's own.

    particle_filtering: a particle's log-weight grows each round by
    ``logit(score) / weight_temperature`` (``score``: its aggregated PRM score), and the
    particles are resampled when the effective sample size falls to ``ess_threshold * n``
    or below (1.0: every round, as in the paper; 0.0: never); ``gibbs_iterations`` > 1 runs
    particle Gibbs (that many sweeps, each after the first conditioned on a reference
    particle drawn from the one before). adaptive_best_of_n: samples
    ``samples_per_round`` solutions per round and stops a problem when the leading answer
    beats the runner-up with posterior probability >= ``stop_confidence`` (the Beta
    criterion), or at ``n`` samples.
    """

    name: StrategyName = StrategyName.best_of_n
    n: int = 16
    select: Select | None = None
    prune: Select = Select.weighted
    beam_width: int = 4
    lookahead: int = 0
    lookahead_temperature: float = 0.0
    max_steps: int = 10
    batch_size: int = 256
    num_simulations: int = 32
    extra_simulations: int = 32
    children_per_expansion: int = 4
    c_puct: float = 1.0
    prior: Prior = Prior.uniform
    mcts_final: MctsFinal = MctsFinal.most_visited
    weight_temperature: float = 1.0
    ess_threshold: float = 1.0
    gibbs_iterations: int = 1
    samples_per_round: int = 4
    stop_confidence: float = 0.95
    save_trees: bool = False

    def __post_init__(self) -> None:
        self.name = StrategyName(self.name)
        self.select = None if self.select is None else Select(self.select)
        self.prune = Select(self.prune)
        if self.prune is Select.majority:
            raise InputError(
                "expected strategy.prune=prm or weighted (beam and DVTS prune by the PRM), "
                "got majority; fix: strategy.prune=weighted"
            )
        self.prior = Prior(self.prior)
        self.mcts_final = MctsFinal(self.mcts_final)
        positive = {
            "n": self.n,
            "beam_width": self.beam_width,
            "max_steps": self.max_steps,
            "batch_size": self.batch_size,
            "num_simulations": self.num_simulations,
            "children_per_expansion": self.children_per_expansion,
            "samples_per_round": self.samples_per_round,
            "gibbs_iterations": self.gibbs_iterations,
        }
        for key, value in positive.items():
            if value < 1:
                raise InputError(
                    f"expected strategy.{key} >= 1, got {value}; fix: strategy.{key}=1 or more"
                )
        if self.lookahead < 0:
            raise InputError(
                f"expected strategy.lookahead >= 0, got {self.lookahead}; fix: strategy.lookahead=0"
            )
        if not self.lookahead_temperature >= 0:
            raise InputError(
                f"expected strategy.lookahead_temperature >= 0, got "
                f"{self.lookahead_temperature}; fix: strategy.lookahead_temperature=0"
            )
        if self.extra_simulations < 0:
            raise InputError(
                f"expected strategy.extra_simulations >= 0, got {self.extra_simulations}; "
                "fix: strategy.extra_simulations=0 (none) or more"
            )
        if self.c_puct < 0:
            raise InputError(
                f"expected strategy.c_puct >= 0, got {self.c_puct}; fix: strategy.c_puct=1.0"
            )
        if not self.weight_temperature > 0:
            raise InputError(
                f"expected strategy.weight_temperature > 0, got {self.weight_temperature}; "
                "fix: strategy.weight_temperature=1.0"
            )
        if not 0.0 <= self.ess_threshold <= 1.0:
            raise InputError(
                f"expected 0 <= strategy.ess_threshold <= 1, got {self.ess_threshold}; "
                "fix: strategy.ess_threshold=1.0 (resample every round)"
            )
        if not 0.5 < self.stop_confidence <= 1.0:
            raise InputError(
                f"expected 0.5 < strategy.stop_confidence <= 1, got {self.stop_confidence}; "
                "fix: strategy.stop_confidence=0.95"
            )
        if self.gibbs_iterations > 1 and self.n < 2:
            raise InputError(
                f"expected strategy.n >= 2 for particle Gibbs (a reference and at least one "
                f"free particle), got n={self.n}, gibbs_iterations={self.gibbs_iterations}; "
                "fix: strategy.n=2 or more, or strategy.gibbs_iterations=1"
            )
        grown = self.num_simulations * self.children_per_expansion  # nodes the tree can have
        if self.name is StrategyName.mcts and grown < self.n:
            least = -(-self.n // self.children_per_expansion)
            raise InputError(
                f"expected strategy.num_simulations * strategy.children_per_expansion >= "
                f"strategy.n for mcts (a tree that can hold n distinct paths; fewer would be "
                f"repeated to fill n candidates), got {self.num_simulations} * "
                f"{self.children_per_expansion} < {self.n}; fix: "
                f"strategy.num_simulations={least}, or a smaller strategy.n"
            )
        if self.name is StrategyName.adaptive_best_of_n and self.select is Select.prm:
            raise InputError(
                "expected strategy.select=majority or weighted for adaptive_best_of_n (it "
                "stops when a vote is settled), got select=prm; fix: strategy.select=weighted"
            )
        if self.name in _WIDTH_STRATEGIES and self.n % self.beam_width:
            lower = max(self.beam_width, self.n - self.n % self.beam_width)
            raise InputError(
                f"expected strategy.n to be a multiple of strategy.beam_width for "
                f"{self.name.value}, got n={self.n}, beam_width={self.beam_width}; "
                f"fix: strategy.n={lower} or a beam_width that divides {self.n}"
            )
        if self.lookahead and self.name not in _WIDTH_STRATEGIES:
            raise InputError(
                f"expected strategy.lookahead=0 for {self.name.value}, got {self.lookahead}; "
                "lookahead applies to beam and dvts only; fix: strategy.lookahead=0"
            )

    def validate(self, has_scorer: bool) -> None:
        """Checks that need the rest of the run's config; raises InputError naming the fix."""
        self.__post_init__()
        if has_scorer:
            return
        if self.name in _NEEDS_SCORER:
            raise InputError(
                f"expected a scorer (PRM) for strategy {self.name.value}, got scorer=null; "
                "fix: choose scorer=... or strategy=best_of_n with strategy.select=majority"
            )
        if self.select in (Select.prm, Select.weighted):
            raise InputError(
                f"expected a scorer (PRM) for strategy.select={self.select.value}, got "
                "scorer=null; fix: choose scorer=... or strategy.select=majority"
            )

    def check_fields_set(self, fields: Iterable[str]) -> None:
        """Refuse a field the user set (``strategy.<field>=...``) that this strategy does not
        read: ``strategy.num_simulations=64`` without ``+strategy=mcts`` would otherwise run
        best-of-N as if it had been heard."""
        read = {*_READ_BY_ALL, *FIELDS_READ[self.name]}
        for field in fields:
            if field in read:
                continue
            if field == "select" and self.name is StrategyName.mcts:
                raise InputError(
                    "expected no strategy.select for mcts, which picks by strategy.mcts_final "
                    "(most_visited or best_value; every result reports the prm, weighted and "
                    "majority picks too); fix: strategy.mcts_final=best_value, or drop "
                    "strategy.select"
                )
            readers = [name.value for name, fields in FIELDS_READ.items() if field in fields]
            who = " and ".join(filter(None, [", ".join(readers[:-1]), *readers[-1:]]))
            raise InputError(
                f"expected settings that strategy {self.name.value} reads, got "
                f"strategy.{field}, read only by {who or 'no strategy'}; "
                f"fix: +strategy={readers[0] if readers else '...'} to run that strategy, or "
                f"drop strategy.{field}"
            )

    def selection(self, has_scorer: bool) -> Select:
        """The selection rule in effect: ``select``, or its default for this run."""
        if self.select is not None:
            return self.select
        return Select.weighted if has_scorer else Select.majority
