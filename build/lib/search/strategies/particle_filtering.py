"""Particle filtering and particle Gibbs with a PRM (Puri et al. 2025, arXiv 2502.01618).

Symbols: N = ``strategy.n`` (particles per problem), T = ``strategy.weight_temperature``,
tau = ``strategy.ess_threshold``, D = ``strategy.max_steps``, I = ``strategy.gibbs_iterations``.

The paper casts search as inference in a state-space model: the policy proposes the next
step, and the PRM's score r of the prefix so far is the likelihood of the observation "this
solution is right so far". Each particle is one prefix.

1. All N particles of a problem start at the question, with log-weight 0.
2. A round: every live particle samples one next step (one generate call, ``n=1`` per
   particle, for all live particles of all problems) and the new prefixes are scored (one
   score call). The particle's score r is the aggregate of its step scores
   (``strategy.aggregation``, the same rule as the final pick; ``aggregation=last`` is the
   paper's choice, the score of the newest step).
3. Every particle's log-weight grows by ``logit(r) / T = log(r / (1 - r)) / T``, with r
   clipped to [1e-6, 1 - 1e-6] (the paper's mapping of a PRM probability to a weight; T = 1
   is the paper's softmax over logits, a larger T flattens the weights, a smaller one
   sharpens them towards the best particle). A particle that has finished (or was cut by
   the token limit) no longer moves but stays in the population: its prefix is unchanged,
   so it gets the same observation again, ``logit(r) / T`` of its final score.
4. Normalised weights w = softmax(log-weights); effective sample size ESS = 1 / sum(w^2).
   If ESS <= tau * N, draw N particles multinomially with probabilities w (duplicates
   share their prefix, finished ones included) and reset every log-weight to 0.
   tau = 1 resamples every round (the paper), tau = 0 never (sequential importance
   sampling).
5. Repeat until every particle of every problem has finished, or after D rounds.

Particle Gibbs (I > 1): the sweep above runs I times. After a sweep, one particle is drawn
by its weight w as the reference (its whole path is kept). The next sweep is a conditional
one: N - 1 free particles start again at the question, and the reference replays its own
path, one step per round, with the scores it already has (no generation); it takes part in
the weights like any particle, resampling draws only the N - 1 free particles (from all N,
so a free particle can be a copy of the reference's prefix and grow from there), and the
reference itself always survives. I = 1 is plain particle filtering.

Candidates: the N particles at the end of the last sweep (the reference last), in
population order; duplicates (particles that
resampling copied) are returned as separate candidates, so the votes count the particle
approximation's mass. Particles still open after D rounds, or cut by the token limit, come
back ``finished=False``. Resampling draws from a local RNG keyed by (``seed``, problem id),
so a problem's result does not depend on the batch it ran in.

Budget per problem: at most N step generations and N scored prefixes per round, N * D in
all (particle Gibbs: N - 1 per round in sweeps after the first, at most
(N + (I - 1)(N - 1)) * D); one generate and one score call per round for every live
particle of every problem (none in a round where only references move).
With ``save_trees``, a node's ``visits`` counts the particles that held it at the end of a
round (after resampling).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from search.aggregation import Aggregation
from search.strategies.base import Calls, Outcome, SearchStrategy
from search.strategies.config import StrategyConfig
from search.strategies.tree import Node, SearchTree, expand
from search.types import Problem

_CLIP = 1e-6


def log_weight_increment(score: float, temperature: float) -> float:
    """``logit(score) / temperature``, the score clipped to [1e-6, 1 - 1e-6]."""
    clipped = min(1.0 - _CLIP, max(_CLIP, score))
    return math.log(clipped / (1.0 - clipped)) / temperature


def normalised_weights(log_weights: Sequence[float]) -> list[float]:
    """softmax(log_weights), computed stably."""
    top = max(log_weights)
    exps = [math.exp(value - top) for value in log_weights]
    total = sum(exps)
    return [value / total for value in exps]


def effective_sample_size(weights: Sequence[float]) -> float:
    """1 / sum(w^2) of normalised weights: N when all are equal, 1 when one holds all."""
    return 1.0 / sum(w * w for w in weights)


def multinomial_resample(weights: Sequence[float], count: int, rng: random.Random) -> list[int]:
    """``count`` indices drawn independently with probabilities ``weights``, sorted."""
    return sorted(rng.choices(range(len(weights)), weights=weights, k=count))


class ParticleFilter(SearchStrategy):
    def __init__(
        self, config: StrategyConfig, aggregation: Aggregation | str, seed: int = 0
    ) -> None:
        super().__init__(config, aggregation)
        self.seed = seed

    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        trees = [SearchTree(problem) for problem in problems]
        rngs = [random.Random(f"{self.seed}|{p.id}|particle_filtering") for p in problems]
        references: list[list[Node] | None] = [None] * len(problems)
        for sweep in range(self.config.gibbs_iterations):
            populations, log_weights = self._sweep(calls, trees, references, rngs)
            if sweep + 1 < self.config.gibbs_iterations:
                references = [
                    _path(nodes[multinomial_resample(normalised_weights(weights), 1, rng)[0]])
                    for nodes, weights, rng in zip(populations, log_weights, rngs, strict=True)
                ]
        return [
            Outcome(tuple(tree.candidate(node, self.aggregation) for node in nodes), tree)
            for tree, nodes in zip(trees, populations, strict=True)
        ]

    def _sweep(
        self,
        calls: Calls,
        trees: Sequence[SearchTree],
        references: Sequence[list[Node] | None],
        rngs: Sequence[random.Random],
    ) -> tuple[list[list[Node]], list[list[float]]]:
        """One (conditional) particle filter over all problems: each problem's population
        at the end (free particles, then its reference if it has one) and log-weights."""
        n = self.config.n
        free = [
            [tree.root] * (n if ref is None else n - 1)
            for tree, ref in zip(trees, references, strict=True)
        ]
        log_weights = [[0.0] * n for _ in trees]
        for depth in range(1, self.config.max_steps + 1):
            live = [
                (index, position)
                for index, nodes in enumerate(free)
                for position, node in enumerate(nodes)
                if not node.terminal
            ]
            replaying = {i for i, ref in enumerate(references) if ref and depth < len(ref)}
            if not live and not replaying:
                break
            parents = [(index, free[index][position]) for index, position in live]
            children = expand(calls, trees, parents, 1, self.aggregation)
            for (index, position), (child,) in zip(live, children, strict=True):
                free[index][position] = child
            for index in sorted({index for index, _ in live} | replaying):
                ref = references[index]
                reference = None if ref is None else ref[min(depth, len(ref) - 1)]
                self._reweight(free[index], reference, log_weights[index], rngs[index])
        populations = [
            nodes if ref is None else [*nodes, ref[-1]]
            for nodes, ref in zip(free, references, strict=True)
        ]
        return populations, log_weights

    def _reweight(
        self,
        free: list[Node],
        reference: Node | None,
        log_weights: list[float],
        rng: random.Random,
    ) -> None:
        """Steps 3 and 4 for one problem's population (``free`` + ``reference``), in place:
        resampling redraws the free particles from all of them; the reference stays."""
        population = free if reference is None else [*free, reference]
        for position, node in enumerate(population):
            assert node.score is not None, "every particle past the root is scored"
            log_weights[position] += log_weight_increment(
                node.score, self.config.weight_temperature
            )
        weights = normalised_weights(log_weights)
        if effective_sample_size(weights) <= self.config.ess_threshold * len(population) + 1e-9:
            drawn = multinomial_resample(weights, len(free), rng)
            free[:] = [population[i] for i in drawn]
            log_weights[:] = [0.0] * len(population)
        for node in free if reference is None else [*free, reference]:
            node.visits += 1


def _path(node: Node) -> list[Node]:
    """The nodes from the root to ``node``: index d is where the particle was after d
    rounds (every round adds one node to a live particle's path)."""
    path: list[Node] = []
    current: Node | None = node
    while current is not None:
        path.append(current)
        current = current.parent
    return path[::-1]
