from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Installed for the demo and the tests only, for its command (`manage.py sandbox_exchange`)."""

    name = "sandbox"
    verbose_name = "Sandbox exchange"
