"""The transformer engine, as shipped (sentiment/model/transformer/): served through the same
endpoint as the fast engine, per request or by default, with the same answer's shape; batches
answer as single texts do; a model directory that is not a model stops the process at start;
a process lets a bounded number of requests wait for the model, which runs below the process's
other threads."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from sentiment.domain.engine import LABELS
from sentiment.serving import sentiment_engine
from sentiment.transformer import WAITING, Busy, Meta, TransformerModel, served_transformer

from .labelled import write

URL = "/api/sentiment/analyze"
BULLISH = [
    "Bitcoin breaks out to a new all-time high, bulls in full control",
    "ETH ETF inflows hit a record, analysts raise their price targets",
    "Apple beats earnings estimates and raises guidance; shares jump 6% after hours",
]
BEARISH = [
    "Exchange hacked, $200 million in user funds stolen; withdrawals halted",
    "BTC loses the 60k support, liquidations cascade as price plunges",
    "Company misses revenue estimates and cuts its outlook; stock sinks 12%",
]
NEUTRAL = [
    "The Fed will publish its meeting minutes on Wednesday at 2 pm",
    "Where do you all keep your hardware wallets?",
    "Bitcoin miners gather in Austin for an annual industry conference",
]


@pytest.fixture
def transformer(settings):
    """The shipped model, loaded once per test (the process's copy is reset around it)."""
    served_transformer.cache_clear()
    yield settings
    served_transformer.cache_clear()


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_it_reads_obvious_market_text_as_a_trader_would(client, transformer):
    texts = BULLISH + BEARISH + NEUTRAL
    response = post(client, {"texts": texts, "engine": "transformer"})
    assert response.status_code == 200
    got = [r["sentiment"] for r in response.json()["results"]]
    assert got == ["Bullish"] * 3 + ["Bearish"] * 3 + ["Neutral"] * 3


def test_its_answer_has_the_fast_engines_shape_keywords_and_all(client, transformer):
    text = "BTC bullish breakout, going to the moon"
    fast = post(client, {"text": text}).json()
    accurate = post(client, {"text": text, "engine": "transformer"}).json()
    assert set(accurate) == set(fast) == {"sentiment", "confidence", "keywords", "probabilities"}
    assert accurate["keywords"] == fast["keywords"] and accurate["keywords"]["bullish"] >= 2
    probs = accurate["probabilities"]
    assert set(probs) == set(LABELS) and abs(sum(probs.values()) - 1) < 1e-3
    assert accurate["confidence"] == max(probs.values()) == probs[accurate["sentiment"]]
    assert accurate["probabilities"] != fast["probabilities"]  # another engine answered


def test_sentiment_engine_makes_it_the_default(client, transformer):
    text = BEARISH[1]
    chosen = post(client, {"text": text, "engine": "transformer"}).json()
    assert post(client, {"text": text}).json() != chosen
    transformer.SENTIMENT_ENGINE = "transformer"
    assert post(client, {"text": text}).json() == chosen
    assert post(client, {"text": text, "engine": "fast"}).json() != chosen


def test_a_batch_answers_each_text_as_it_would_alone(client, transformer):
    # Texts of very different lengths: the int8 network scales each run's activations as one, so
    # each text runs alone and its answer never depends on the texts sent with it.
    texts = [BULLISH[0] + " " + "and the rally keeps going " * 12, "rekt", *NEUTRAL, "crash", BEARISH[2] * 3]
    together = post(client, {"texts": texts, "engine": "transformer"}).json()["results"]
    alone = [post(client, {"text": text, "engine": "transformer"}).json() for text in texts]
    assert together == alone
    assert post(client, {"texts": texts[::-1], "engine": "transformer"}).json()["results"] == alone[::-1]


def test_links_are_not_read(transformer):
    model = served_transformer()
    with_link, without = model.probabilities([f"{BULLISH[1]} https://t.co/AbCdEf123", BULLISH[1]])
    assert with_link == pytest.approx(without, abs=1e-6)


def test_a_text_past_the_longest_input_is_cut_not_refused(client, transformer):
    long = " ".join(["bitcoin crashes and bleeds"] * 2000)[:10_000]
    response = post(client, {"text": long, "engine": "transformer"})
    assert response.status_code == 200 and response.json()["sentiment"] == "Bearish"


def test_an_unknown_engine_is_a_clear_400(client, transformer):
    response = post(client, {"text": "BTC up", "engine": "gpt"})
    assert response.status_code == 400
    assert response.json()["error"] == 'engine: must be "fast" or "transformer"'


def test_the_thread_budget_is_what_sentiment_threads_says(transformer):
    transformer.SENTIMENT_THREADS = 2
    model = served_transformer()
    assert model.network.session.get_session_options().intra_op_num_threads == 2


def test_requests_past_the_waiting_room_are_refused_at_once(client, transformer):
    model = served_transformer()
    running = threading.Event()
    model.runner.submit(running.wait, 30)  # the model is busy with a request (the test holds it)
    results, refused = [], []

    def ask():
        try:
            results.append(model.probabilities(["BTC up"]))
        except Busy:
            refused.append(True)

    # One running and WAITING waiting fill the room: of 2 + WAITING callers, one is refused at once.
    callers = [threading.Thread(target=ask) for _ in range(2 + WAITING)]
    try:
        for t in callers:
            t.start()
        for _ in range(500):
            if refused:
                break
            threading.Event().wait(0.01)
        assert refused == [True] and results == []
        response = post(client, {"text": "BTC up", "engine": "transformer"})
        assert response.status_code == 503
        assert response["Retry-After"] == "1" and response.json()["error"] == "Sentiment engine busy"
        assert post(client, {"text": "BTC up"}).status_code == 200  # the fast engine is not held up
    finally:
        running.set()
        for t in callers:
            t.join(10)
    assert len(results) == 1 + WAITING and refused == [True]
    assert post(client, {"text": "BTC up", "engine": "transformer"}).status_code == 200


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
@pytest.mark.parametrize("nice", [10, 0])
def test_the_model_runs_below_the_other_threads_of_the_process_by_sentiment_nice(transformer, nice):
    transformer.SENTIMENT_NICE = nice
    model = served_transformer()
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = model.runner.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert theirs == min(19, ours + nice)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours  # the caller's is unchanged


def test_the_shipped_model_says_what_it_is(settings):
    meta = json.loads((settings.SENTIMENT_TRANSFORMER_DIR / "meta.json").read_text())
    assert Meta.read(settings.SENTIMENT_TRANSFORMER_DIR / "meta.json").labels == list(LABELS)
    assert meta["encoder_licence"] == "Apache-2.0" and "all-mpnet-base-v2" in meta["encoder"]
    validation = meta["figures"]["validation"]
    assert validation["train.csv"]["transformer"]["n"] > 1000 and validation["crypto_posts.csv"]["transformer"]["n"] > 300
    assert (settings.SENTIMENT_TRANSFORMER_DIR / "model.onnx").stat().st_size < 80 * 2**20


@pytest.fixture
def model_dir(tmp_path, settings):
    """A copy of the shipped model to break, served for one test."""
    dest = tmp_path / "model"
    shutil.copytree(settings.SENTIMENT_TRANSFORMER_DIR, dest)
    settings.SENTIMENT_TRANSFORMER_DIR = dest
    settings.SENTIMENT_ENGINE = "transformer"
    served_transformer.cache_clear()
    yield dest
    served_transformer.cache_clear()


def rewrite_meta(directory, **changes):
    meta = json.loads((directory / "meta.json").read_text())
    (directory / "meta.json").write_text(json.dumps({**meta, **changes}))


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda d: (d / "model.onnx").unlink(), "model.onnx"),
        (lambda d: (d / "model.onnx").write_bytes(b"not a graph"), "not a transformer sentiment model"),
        (lambda d: (d / "tokenizer.json").write_text("{"), "not a transformer sentiment model"),
        (lambda d: rewrite_meta(d, labels=["Up", "Down", "Flat"]), "its labels are not"),
        (lambda d: (d / "meta.json").write_text("[1, 2]"), "not a transformer sentiment model"),
        (lambda d: rewrite_meta(d, labels=7), "not a transformer sentiment model"),
        (lambda d: rewrite_meta(d, temperature=-1), "temperature"),
        (lambda d: rewrite_meta(d, fast_weight=2), "fast_weight"),
        (lambda d: rewrite_meta(d, max_tokens=100_000), "max_tokens"),
    ],
)
def test_a_directory_that_is_not_a_model_fails_the_system_check(model_dir, breakage, reason):
    breakage(model_dir)
    (error,) = sentiment_engine(None)
    assert error.id == "sentiment.E004" and reason in error.msg
    with pytest.raises(SystemCheckError, match="sentiment.E004"):
        call_command("check")


def test_a_model_directory_is_only_checked_when_the_transformer_is_the_default(model_dir, settings):
    (model_dir / "model.onnx").unlink()
    settings.SENTIMENT_ENGINE = "fast"
    assert sentiment_engine(None) == []


def test_an_unknown_default_engine_fails_the_system_check(settings):
    settings.SENTIMENT_ENGINE = "bert"
    (error,) = sentiment_engine(None)
    assert error.id == "sentiment.E003" and "fast, transformer" in error.msg


@pytest.mark.parametrize(("threads", "nice"), [(0, 10), (65, 10), (1, -5), (1, 20)])
def test_a_thread_budget_out_of_range_fails_the_system_check(settings, threads, nice):
    settings.SENTIMENT_THREADS, settings.SENTIMENT_NICE = threads, nice
    (error,) = sentiment_engine(None)
    assert error.id == "sentiment.E005" and f"not {threads} and {nice}" in error.msg


def test_the_shipped_model_is_checked_and_passes(model_dir):
    assert sentiment_engine(None) == []


def test_a_blend_fitted_beside_another_fast_model_is_a_warning_not_an_error(model_dir, capsys):
    rewrite_meta(model_dir, fast_model_sha256="0" * 64)
    (warning,) = sentiment_engine(None)
    assert warning.id == "sentiment.W001" and "000000000000" in warning.msg and "make sentiment-transformer" in warning.hint
    call_command("check")  # a warning: the server still starts
    assert "sentiment.W001" in capsys.readouterr().err


def test_a_model_without_the_fast_engine_beside_it_is_not_warned_about(model_dir):
    rewrite_meta(model_dir, fast_model_sha256="0" * 64, fast_weight=0)
    assert sentiment_engine(None) == []


def test_it_runs_beside_the_fast_engine_with_the_weight_it_was_trained_with(model_dir):
    model = TransformerModel(model_dir)
    assert 0 <= model.meta.fast_weight <= 1
    rewrite_meta(model_dir, fast_weight=1.0)
    served_transformer.cache_clear()
    from sentiment.serving import analyze_texts

    # With all the weight on the fast engine, the answer is the fast engine's.
    assert analyze_texts([BEARISH[0]], "transformer") == analyze_texts([BEARISH[0]], "fast")


def test_evaluate_sentiment_scores_held_out_posts_with_the_transformer_as_served(tmp_path, transformer, capsys):
    rows = [(t, LABELS.index(label)) for label, texts in [("Bullish", BULLISH), ("Bearish", BEARISH), ("Neutral", NEUTRAL)]
            for t in texts]
    unseen = write(tmp_path / "unseen.csv", rows + [(BULLISH[0], LABELS.index("Bearish"))])  # one wrong on purpose
    call_command("evaluate_sentiment", engine="transformer", holdout=[unseen])
    out = capsys.readouterr().out
    recorded = json.loads((transformer.SENTIMENT_TRANSFORMER_DIR / "meta.json").read_text())["figures"]["validation"]
    assert f'"accuracy": {recorded["train.csv"]["transformer"]["accuracy"]}' in out  # the training's figures, first
    assert "unseen.csv: the transformer engine as served, n=10" in out and "accuracy 0.900" in out


def test_evaluate_sentiment_scores_both_held_out_sets_by_default(transformer, capsys):
    call_command("evaluate_sentiment", engine="transformer")
    out = capsys.readouterr().out
    assert "crypto_holdout.csv: the transformer engine as served, n=100" in out
    assert "crypto_holdout_more.csv: the transformer engine as served, n=284" in out


def test_evaluate_sentiment_refuses_a_directory_that_is_not_a_transformer_model(model_dir):
    (model_dir / "tokenizer.json").write_text("{")
    with pytest.raises(CommandError, match="not a transformer sentiment model"):
        call_command("evaluate_sentiment", engine="transformer", holdout=[])


@pytest.fixture
def in_a_process(transformer):
    """SENTIMENT_WORKER=process: the served model's network in a process of its own (stopped after)."""
    transformer.SENTIMENT_WORKER = "process"
    model = served_transformer()
    yield model
    model.close()


def test_a_worker_process_answers_exactly_as_the_thread_does(client, in_a_process):
    texts = BULLISH + BEARISH + NEUTRAL
    alone = TransformerModel(in_a_process.start_args[0])
    try:
        assert in_a_process.logits(texts) == alone.logits(texts)
    finally:
        alone.close()
    response = post(client, {"texts": texts, "engine": "transformer"})
    assert [r["sentiment"] for r in response.json()["results"]] == ["Bullish"] * 3 + ["Bearish"] * 3 + ["Neutral"] * 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_the_worker_process_runs_below_the_web_process_by_sentiment_nice(in_a_process):
    pid = in_a_process.runner.submit(os.getpid).result()
    assert pid != os.getpid()
    assert in_a_process.runner.submit(os.getpriority, os.PRIO_PROCESS, 0).result() == min(19, os.getpriority(
        os.PRIO_PROCESS, 0) + in_a_process.start_args[2])


def test_a_worker_process_that_dies_is_replaced_and_only_its_request_is_refused(client, in_a_process):
    os.kill(in_a_process.runner.submit(os.getpid).result(), signal.SIGKILL)
    response = post(client, {"text": "BTC breaks out to a new high", "engine": "transformer"})
    assert response.status_code == 503 and response["Retry-After"] == "1"
    response = post(client, {"text": "BTC breaks out to a new high", "engine": "transformer"})
    assert response.status_code == 200 and response.json()["sentiment"] == "Bullish"


def test_a_directory_that_is_not_a_model_is_refused_by_the_worker_process_with_the_reason(model_dir):
    (model_dir / "tokenizer.json").write_text("{")
    with pytest.raises(ValueError, match="tokenizer.json"):
        TransformerModel(model_dir, worker="process")


def test_an_unknown_worker_fails_the_system_check(settings):
    settings.SENTIMENT_WORKER = "gpu"
    (error,) = sentiment_engine(None)
    assert error.id == "sentiment.E006" and "thread, process" in error.msg


def test_the_worker_process_does_not_outlive_its_web_process(settings, tmp_path):
    # A web process that ends without a word (os._exit: no shutdown of its pool) leaves no worker behind.
    script = ("import os, sys; from pathlib import Path; from sentiment.transformer import TransformerModel; "
              "m = TransformerModel(Path(sys.argv[1]), worker='process'); "
              "print(m.runner.submit(os.getpid).result(), flush=True); os._exit(0)")
    with open(tmp_path / "out", "w") as out:  # a file, not a pipe: a worker left behind would hold a pipe open
        subprocess.run([sys.executable, "-c", script, str(settings.SENTIMENT_TRANSFORMER_DIR)], stdout=out, timeout=120,
                       cwd=settings.BASE_DIR, check=True)
    worker = int((tmp_path / "out").read_text().split()[-1])
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        threading.Event().wait(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail(f"worker {worker} still running 10 s after its web process ended")


def test_a_worker_that_cannot_be_replaced_yet_is_tried_again_on_the_next_request(client, model_dir, settings):
    settings.SENTIMENT_WORKER = "process"
    model = served_transformer()
    try:
        tokenizer = (model_dir / "tokenizer.json").read_bytes()
        (model_dir / "tokenizer.json").write_text("{")  # the files go bad while the worker runs
        os.kill(model.runner.submit(os.getpid).result(), signal.SIGKILL)
        ask = {"text": "BTC breaks out to a new high", "engine": "transformer"}
        assert post(client, ask).status_code == 503  # died; its replacement cannot load the model
        (model_dir / "tokenizer.json").write_bytes(tokenizer)
        assert post(client, ask).status_code == 503  # still the dead one: replaced now
        assert post(client, ask).status_code == 200
    finally:
        served_transformer().close()


@pytest.mark.parametrize("figures", ["none", {}, {"validation": 3}])
def test_evaluate_sentiment_scores_a_model_that_recorded_no_figures(model_dir, tmp_path, figures, capsys):
    rewrite_meta(model_dir, figures=figures)
    unseen = write(tmp_path / "unseen.csv", [(BULLISH[0], LABELS.index("Bullish"))])
    call_command("evaluate_sentiment", engine="transformer", holdout=[unseen])
    out = capsys.readouterr().out
    assert "recorded at training" not in out and "unseen.csv: the transformer engine as served, n=1" in out
