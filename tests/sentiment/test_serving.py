"""SENTIMENT_MODEL: an operator's own model, trained with `train_sentiment --out`, is what the
endpoint serves; a file that is not a model stops the process at start with the reason."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from cryptosite.stack import BASE_DIR
from sentiment.domain.engine import Model
from sentiment.serving import sentiment_model, served_model

URL = "/api/sentiment/analyze"
# A word the bundled model has never seen: it reads Neutral there.
WORD = "zorblax"


@pytest.fixture
def own_model(tmp_path):
    rows = [(f"{WORD} {w}", 1) for w in ("today", "again", "now", "here")]
    rows += [(f"quuxed {w}", 0) for w in ("today", "again", "now", "here")]
    rows += [(f"meeting {w}", 2) for w in ("today", "again", "now", "here")]
    data = tmp_path / "mine.csv"
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows), encoding="utf-8")
    out = tmp_path / "mine.json.gz"
    call_command("train_sentiment", "--data", str(data), "--extra", "--out", str(out), stdout=open(os.devnull, "w"))
    return out


@pytest.fixture
def serving(settings):
    """Point SENTIMENT_MODEL somewhere for one test; the process's model is reloaded around it."""
    served_model.cache_clear()

    def use(path):
        settings.SENTIMENT_MODEL = path
        served_model.cache_clear()

    yield use
    served_model.cache_clear()


def analyze(client, text):
    return client.post(URL, json.dumps({"text": text}), content_type="application/json").json()


def test_the_endpoint_serves_the_model_sentiment_model_names(client, serving, own_model):
    assert analyze(client, f"{WORD} {WORD}")["sentiment"] == "Neutral"
    serving(own_model)
    assert analyze(client, f"{WORD} {WORD}")["sentiment"] == "Bullish"
    assert analyze(client, "quuxed quuxed")["sentiment"] == "Bearish"
    assert sentiment_model(None) == []


def write_gz(path, data):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.json.gz", None, "No such file"),
        ("plain.txt", b"not a model", "Not a gzipped file"),
        ("labels.json.gz", {"labels": ["Up", "Down"], "weights": {}}, "its labels are not"),
        ("weights.json.gz", {"labels": ["Bearish", "Bullish", "Neutral"], "weights": {"w:moon": [1, 2]}},
         "three numbers a feature"),
        ("temperature.json.gz", {"labels": ["Bearish", "Bullish", "Neutral"], "weights": {}, "temperature": 0},
         "temperature"),
    ],
)
def test_a_file_that_is_not_a_model_fails_the_system_check(tmp_path, serving, name, content, reason):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write_gz(path, content)
    serving(path)
    [error] = sentiment_model(None)
    assert error.id == "sentiment.E001" and str(path) in error.msg and reason in error.msg


def test_the_model_file_train_sentiment_writes_loads(own_model):
    assert Model.load(own_model).probabilities({"w:" + WORD: 1.0, "bias": 1.0})[1] > 0.5


def test_the_web_process_refuses_to_start_with_a_bad_model(tmp_path):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not a model")
    result = subprocess.run([sys.executable, "-c", "import cryptosite.asgi"], cwd=BASE_DIR, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "SENTIMENT_MODEL": str(bad)})
    assert result.returncode != 0
    assert f"Sentiment model: {bad} is not a sentiment model" in result.stderr
