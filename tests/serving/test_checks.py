"""The system check serving.W001 (registered through streaming's checks, so it runs at start and in
`manage.py check`): quiet while every installed library is the version its serving module was
written for, a warning naming the module, the library and both versions when one differs."""

import subprocess
import sys
from importlib import metadata

from django.core.checks import WARNING, Tags, run_checks

from cryptosite.stack import BASE_DIR
from serving import checks


def pin_warnings():
    return [message for message in run_checks(tags=[Tags.compatibility]) if message.id == "serving.W001"]


def test_the_check_is_quiet_while_every_installed_version_is_the_pinned_one():
    assert checks.mismatches() == []
    assert pin_warnings() == []


def test_an_installed_version_other_than_the_pinned_one_is_a_warning_naming_the_module_to_check(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.99.1" if name == "uvicorn" else real(name))
    (warning,) = pin_warnings()
    assert warning.level == WARNING and warning.obj == "serving.uvicorn_ws"
    assert warning.msg == "serving.uvicorn_ws was written for uvicorn 0.54, but 0.99 is installed"
    assert "serving/uvicorn_ws.py" in warning.hint and "WRITTEN_FOR" in warning.hint


def test_a_library_that_is_not_installed_is_a_warning_too(monkeypatch):
    def version(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    warned = {(w.obj, w.msg.split(" was written for ")[1].split(",")[0]) for w in pin_warnings()}
    assert ("serving.daphne_ws", "autobahn 26.11") in warned and ("serving.django_cache", "django 5.2") in warned
    assert all("but none is installed" in w.msg for w in pin_warnings())


def test_the_check_reads_the_pins_without_importing_the_servers_libraries():
    """Every process that runs the checks would otherwise load daphne, Twisted and uvicorn."""
    code = ("import sys; from serving import checks; checks.mismatches(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'daphne', 'twisted', 'uvicorn', 'autobahn', 'serving'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["['serving',", "'serving.checks']"]
