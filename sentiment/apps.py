from django.apps import AppConfig


class SentimentConfig(AppConfig):
    name = "sentiment"

    def ready(self) -> None:
        from . import checks, serving  # noqa: F401  (register the settings' and the model's system checks)
