"""``python -m search.serve``: test-time search behind an OpenAI-compatible endpoint.

Examples::

    python -m search.serve port=8000                          # embedded models, best-of-N
    python -m search.serve +strategy=beam strategy.n=8 aggregation=prod
    python -m search.serve policy=openai_server policy.base_url=http://127.0.0.1:8001 \\
        scorer.backend=vllm_server scorer.base_url=http://127.0.0.1:8002

Then, from any OpenAI client::

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")
    client.chat.completions.create(model="prm-search",
        messages=[{"role": "user", "content": "Compute 7 + 5 - 3."}],
        extra_body={"n": 8, "strategy": "best_of_n", "aggregation": "prod"})
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from search.components import build_component, check_component
from search.inputs import exit_on_input_error, exit_on_server_error
from search.resolve import CONF_DIR
from search.serve.config import ServeConfig, register_configs

log = logging.getLogger("search.serve")

register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="serve")
def main(raw: DictConfig) -> None:
    with exit_on_server_error(), exit_on_input_error():
        serve(raw)


def serve(raw: DictConfig) -> None:
    config: ServeConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
    config.strategy.validate(has_scorer=config.scorer is not None)  # before any model loads
    settings = OmegaConf.to_container(raw, resolve=True)
    assert isinstance(settings, dict)
    check_component("policy", settings.get("policy"), seed=config.seed)  # likewise
    check_component("scorer", settings.get("scorer"))

    import uvicorn

    from search.serve.app import build_app
    from search.serve.service import SearchService

    generator = build_component("policy", raw.policy, seed=config.seed)
    scorer = None if raw.scorer is None else build_component("scorer", raw.scorer)
    service = SearchService(
        generator,
        scorer,
        config.strategy,
        config.aggregation,
        seed=config.seed,
        max_n=config.max_n,
    )
    app = build_app(
        service,
        model_name=config.model_name,
        max_batch_problems=config.max_batch_problems,
        max_wait_s=config.max_wait_ms / 1000,
        disconnect_poll_s=config.disconnect_poll_ms / 1000,
    )
    log.info("serving %s on http://%s:%d/v1", config.model_name, config.host, config.port)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level)


if __name__ == "__main__":
    main()
