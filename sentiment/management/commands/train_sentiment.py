"""Fit the sentiment model and write sentiment/model/model.json.gz.

    python manage.py train_sentiment [--data ../shared/data/tfns/train.csv]
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sentiment import training

CRYPTO = Path(__file__).resolve().parents[2] / "data" / "crypto_posts.csv"
DEFAULT_DATA = settings.BASE_DIR.parent / "shared" / "data" / "tfns" / "train.csv"


class Command(BaseCommand):
    help = "Train the sentiment model from labelled CSV files (text,label)."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Twitter Financial News train.csv")
        parser.add_argument("--extra", type=Path, nargs="*", default=[CRYPTO], help="more labelled CSV files")
        parser.add_argument("--c", type=float, default=training.DEFAULT_C, help="inverse regularisation strength")
        parser.add_argument("--out", type=Path, default=training.MODEL_PATH)

    def handle(self, *args, data: Path, extra: list[Path], c: float, out: Path, **options):
        if not data.is_file():
            raise CommandError(f"No training data at {data}")
        texts, labels = training.read_labelled(data)
        for path in extra:
            more_t, more_l = training.read_labelled(path)
            texts += more_t
            labels += more_l
        model = training.fit(texts, labels, c)
        meta = {
            "trained_on": [
                "zeroshot/twitter-financial-news-sentiment (train split, MIT licence)",
                *[p.name for p in extra],
            ],
            "rows": len(texts),
            "C": c,
        }
        training.save(model, out, meta)
        self.stdout.write(f"trained on {len(texts)} rows; {len(model.weights)} features -> {out}")
