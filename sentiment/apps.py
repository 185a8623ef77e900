from django.apps import AppConfig


class SentimentConfig(AppConfig):
    name = "sentiment"

    def ready(self) -> None:
        from . import serving  # noqa: F401  (registers the model's system check)
