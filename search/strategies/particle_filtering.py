"""Particle filtering with a PRM (Puri et al. 2025, arXiv 2502.01618).

Symbols: N = ``strategy.n`` (particles per problem), T = ``strategy.weight_temperature``,
tau = ``strategy.ess_threshold``, D = ``strategy.max_steps``.

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

Candidates: the N particles of the end, in population order; duplicates (particles that
resampling copied) are returned as separate candidates, so the votes count the particle
approximation's mass. Particles still open after D rounds, or cut by the token limit, come
back ``finished=False``. Resampling draws from a local RNG keyed by (``seed``, problem id),
so a problem's result does not depend on the batch it ran in.

Budget per problem: at most N step generations and N scored prefixes per round, N * D in
all; one generate and one score call per round for every live particle of every problem.
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
        config = self.config
        n = config.n
        trees = [SearchTree(problem) for problem in problems]
        rngs = [random.Random(f"{self.seed}|{p.id}|particle_filtering") for p in problems]
        particles: list[list[Node]] = [[tree.root] * n for tree in trees]
        log_weights = [[0.0] * n for _ in problems]

        for _ in range(config.max_steps):
            live = [
                (index, position)
                for index, nodes in enumerate(particles)
                for position, node in enumerate(nodes)
                if not node.terminal
            ]
            if not live:
                break
            parents = [(index, particles[index][position]) for index, position in live]
            children = expand(calls, trees, parents, 1, self.aggregation)
            for (index, position), (child,) in zip(live, children, strict=True):
                particles[index][position] = child
            for index in sorted({index for index, _ in live}):
                self._reweight(particles[index], log_weights[index], rngs[index])

        return [
            Outcome(tuple(tree.candidate(node, self.aggregation) for node in nodes), tree)
            for tree, nodes in zip(trees, particles, strict=True)
        ]

    def _reweight(self, nodes: list[Node], log_weights: list[float], rng: random.Random) -> None:
        """Steps 3 and 4 for one problem's population, in place."""
        for position, node in enumerate(nodes):
            assert node.score is not None, "every particle past the root is scored"
            log_weights[position] += log_weight_increment(
                node.score, self.config.weight_temperature
            )
        weights = normalised_weights(log_weights)
        if effective_sample_size(weights) <= self.config.ess_threshold * len(nodes) + 1e-9:
            drawn = multinomial_resample(weights, len(nodes), rng)
            nodes[:] = [nodes[i] for i in drawn]
            log_weights[:] = [0.0] * len(nodes)
        for node in nodes:
            node.visits += 1
