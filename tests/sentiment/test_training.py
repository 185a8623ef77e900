"""Training and evaluation commands on small labelled files (scikit-learn at build time)."""


import pytest
from django.core.management import CommandError, call_command

from sentiment import training
from sentiment.domain.engine import Model, analyze
from sentiment.management.commands.train_sentiment import CRYPTO, DATA_DIR, HOLDOUTS

from .labelled import write

NEWS = [("Shares surge after record profit", 1), ("Stock plunges on weak guidance", 0),
        ("Company to hold annual meeting in May", 2)]
POSTS = [("BTC to the moon, bulls in control", 1), ("ETH dumping, got rekt", 0), ("What wallet do you use?", 2)]


def test_extra_rows_weigh_more_than_the_main_corpus():
    texts, labels, weights = training.training_set({"news": ([t for t, _ in NEWS], [l for _, l in NEWS]),
                                                    "posts": ([t for t, _ in POSTS], [l for _, l in POSTS])})
    assert texts[:3] == [t for t, _ in NEWS] and labels[3:] == [l for _, l in POSTS]
    assert weights == [1.0] * 3 + [training.EXTRA_WEIGHT] * 3
    # A file of its own weight (the transformer's hard posts).
    _, _, weights = training.training_set({"news": ([t for t, _ in NEWS], [l for _, l in NEWS]),
                                           "posts": ([t for t, _ in POSTS], [l for _, l in POSTS]),
                                           "hard": (["not a bear trap, a bear market"], [0])}, 3.0, {"hard": 1.5})
    assert weights == [1.0] * 3 + [3.0] * 3 + [1.5]


def test_no_held_out_post_is_in_a_training_file():
    def normal(text):
        return " ".join(text.lower().split())

    trained = {normal(t) for path in DATA_DIR.glob("crypto_posts*.csv")
               for t in training.read_labelled(path)[0]}
    assert len(trained) > 4000  # every file of posts: the fast engine's, the transformer's, the hard ones
    for path in HOLDOUTS:
        held = [normal(t) for t in training.read_labelled(path)[0]]
        assert len(set(held)) == len(held) and not trained & set(held), path.name


def test_train_command_writes_a_model_the_engine_loads(tmp_path, capsys):
    data = write(tmp_path / "news.csv", NEWS * 4)
    posts = write(tmp_path / "posts.csv", POSTS * 4)
    out = tmp_path / "model.json.gz"
    call_command("train_sentiment", data=data, extra=[posts], out=out)
    model = Model.load(out)
    assert analyze("to the moon, bulls in control", model).sentiment == "Bullish"
    assert analyze("plunges, got rekt", model).sentiment == "Bearish"
    assert "trained on 24 rows" in capsys.readouterr().out


def test_the_fast_engine_trains_on_the_posts_but_not_the_hard_ones_nor_the_transformers_more(tmp_path):
    data = write(tmp_path / "news.csv", NEWS * 4)
    out = tmp_path / "model.json.gz"
    call_command("train_sentiment", data=data, out=out)
    assert training.trained_on(out) == ["news.csv", CRYPTO.name]
    # The shipped model was built that way too (the transformer's validation run trains its fast
    # engine on the files this names).
    assert training.trained_on()[1:] == [CRYPTO.name]  # neither the hard posts nor the transformer's more


@pytest.mark.parametrize("held", HOLDOUTS, ids=lambda p: p.name)
def test_train_command_refuses_the_held_out_sets(tmp_path, held):
    data = write(tmp_path / "news.csv", NEWS * 4)
    with pytest.raises(CommandError, match="held-out"):
        call_command("train_sentiment", data=data, extra=[CRYPTO, held], out=tmp_path / "m.json.gz")
    assert not (tmp_path / "m.json.gz").exists()


def test_evaluate_command_prints_cross_validation_and_held_out_figures(tmp_path, capsys):
    data = write(tmp_path / "news.csv", NEWS * 4)
    posts = write(tmp_path / "posts.csv", POSTS * 4)
    unseen = write(tmp_path / "unseen.csv", [("Bulls in control, moon", 1), ("Got rekt again", 0)])
    call_command("evaluate_sentiment", data=data, labelled=[posts], holdout=[unseen], folds=2)
    out = capsys.readouterr().out
    assert "news.csv: 2-fold CV, n=12" in out and "posts.csv: 2-fold CV, n=12" in out
    assert "unseen.csv: held out (trained on all of the above), n=2" in out
    assert "accuracy 1.000" in out.split("unseen.csv")[1]


def test_evaluate_command_rejects_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="No data"):
        call_command("evaluate_sentiment", data=tmp_path / "missing.csv", labelled=[], holdout=[])


@pytest.mark.parametrize("rows", [[("Shares surge", 5)], [("Shares surge", "bullish")], NEWS[:2] * 4])
def test_train_command_rejects_bad_labels_and_missing_classes_and_writes_nothing(tmp_path, rows):
    data = write(tmp_path / "news.csv", rows)
    with pytest.raises(CommandError, match="Bad labelled data"):
        call_command("train_sentiment", data=data, extra=[], out=tmp_path / "m.json.gz")
    assert not (tmp_path / "m.json.gz").exists()


def test_train_command_rejects_a_file_without_the_label_column(tmp_path):
    data = tmp_path / "news.csv"
    data.write_text("text,sentiment\nShares surge,1\n")
    with pytest.raises(CommandError, match="must name the columns text and label"):
        call_command("train_sentiment", data=data, extra=[], out=tmp_path / "m.json.gz")
