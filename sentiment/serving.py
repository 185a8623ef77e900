"""The model this process serves: the file SENTIMENT_MODEL names (one `train_sentiment --out`
wrote), else the bundled one. Loaded once per process; a file that is not a model is refused
at start, by the system check below and by the ASGI application's warm-up."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Warning, register

from .domain.engine import ENGINES, MODEL_PATH, Analysis, Model, analyze, default_model

# What Model.load raises for a file that is missing, not gzip, not JSON or not a model.
NOT_A_MODEL = (OSError, EOFError, ValueError)
WORKERS = ("thread", "process")  # where the transformer's network runs (SENTIMENT_WORKER)


def model_path() -> Path:
    return settings.SENTIMENT_MODEL or MODEL_PATH


@lru_cache(maxsize=1)
def served_model() -> Model:
    path = model_path()
    # The bundled model is the engine's own default: a process holds one copy of it.
    return default_model() if path == MODEL_PATH else Model.load(path)


def problem() -> str | None:
    """Why the configured model cannot be served, or None."""
    try:
        served_model()
    except NOT_A_MODEL as exc:
        return f"{model_path()} is not a sentiment model ({exc})"
    return None


@register()
def sentiment_model(app_configs, **kwargs):
    if settings.SENTIMENT_MODEL is None:  # the bundled model: the tests load it
        return []
    reason = problem()
    hint = "set SENTIMENT_MODEL to a file `manage.py train_sentiment --out FILE` wrote, or unset it"
    return [Error(f"SENTIMENT_MODEL: {reason}", hint=hint, id="sentiment.E001")] if reason else []


def analyze_texts(texts: list[str], engine: str | None = None) -> list[Analysis]:
    """Each text's analysis by the engine named (default SENTIMENT_ENGINE)."""
    model = served_model()
    if (engine or settings.SENTIMENT_ENGINE) == "transformer":
        from .transformer import served_transformer

        transformer = served_transformer()
        probabilities = transformer.probabilities(texts)
        return [analyze(t, model, p, transformer.meta.fast_weight) for t, p in zip(texts, probabilities)]
    return [analyze(t, model) for t in texts]


@register()
def sentiment_engine(app_configs, **kwargs):
    if settings.SENTIMENT_ENGINE not in ENGINES:
        return [Error(f"SENTIMENT_ENGINE must be one of {', '.join(ENGINES)}, not {settings.SENTIMENT_ENGINE!r}",
                      id="sentiment.E003")]
    if not 1 <= settings.SENTIMENT_THREADS <= 64 or not 0 <= settings.SENTIMENT_NICE <= 19:
        return [Error(f"SENTIMENT_THREADS must be 1-64 and SENTIMENT_NICE 0-19, not {settings.SENTIMENT_THREADS} and "
                      f"{settings.SENTIMENT_NICE}", id="sentiment.E005")]
    if settings.SENTIMENT_WORKER not in WORKERS:
        return [Error(f"SENTIMENT_WORKER must be one of {', '.join(WORKERS)}, not {settings.SENTIMENT_WORKER!r}",
                      id="sentiment.E006")]
    if settings.SENTIMENT_ENGINE != "transformer":
        return []
    from .transformer import problem as transformer_problem

    reason = transformer_problem()
    hint = "set SENTIMENT_TRANSFORMER_DIR to a directory `train_sentiment --engine transformer` wrote, or unset it"
    if reason:
        return [Error(f"SENTIMENT_ENGINE=transformer: {reason}", hint=hint, id="sentiment.E004")]
    return blend_mismatch()


def blend_mismatch() -> list[Warning]:
    """A warning when the transformer's fast_weight was fitted beside another fast model than the
    one served: the blend still answers, but its weight and calibration were not fitted for it."""
    from .transformer import Meta

    meta = Meta.read(settings.SENTIMENT_TRANSFORMER_DIR / "meta.json")
    if not meta.fast_weight or meta.fast_model_sha256 is None:
        return []
    from .encoders import sha256  # the digest train_sentiment recorded

    served = sha256(model_path())
    if served == meta.fast_model_sha256:
        return []
    return [Warning(f"SENTIMENT_ENGINE=transformer: its fast_weight ({meta.fast_weight}) was fitted beside another fast model "
                    f"(sha256 {meta.fast_model_sha256[:12]}…) than {model_path()} (sha256 {served[:12]}…)",
                    hint="train the transformer again after the fast model: `make sentiment-transformer`",
                    id="sentiment.W001")]
