"""Fit the sentiment model and write sentiment/model/model.json.gz.

    python manage.py train_sentiment [--data sentiment/data/tfns/train.csv] [--extra more.csv ...]
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sentiment import training

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CRYPTO = DATA_DIR / "crypto_posts.csv"
# Written for evaluation only: never passed to training.
HOLDOUT = DATA_DIR / "crypto_holdout.csv"
DEFAULT_DATA = settings.BASE_DIR / "sentiment" / "data" / "tfns" / "train.csv"
TFNS = "zeroshot/twitter-financial-news-sentiment (train split, MIT licence)"


class Command(BaseCommand):
    help = "Train the sentiment model from labelled CSV files (text,label)."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Twitter Financial News train.csv")
        parser.add_argument(
            "--extra", type=Path, nargs="*", default=[CRYPTO],
            help=f"more labelled CSV files (each row weighs {training.EXTRA_WEIGHT:g})",
        )
        parser.add_argument("--c", type=float, default=training.DEFAULT_C, help="inverse regularisation strength")
        parser.add_argument("--out", type=Path, default=training.MODEL_PATH)

    def handle(self, *args, **options):
        try:
            self._handle(**options)
        except ValueError as exc:  # a bad label or header, a label without rows
            raise CommandError(f"Bad labelled data: {exc}") from exc

    def _handle(self, *, data: Path, extra: list[Path], c: float, out: Path, **options):
        if not data.is_file():
            raise CommandError(f"No training data at {data}")
        datasets = {data.name: training.read_labelled(data)}
        for path in extra:
            if path.resolve() == HOLDOUT.resolve():
                raise CommandError(f"{path.name} is the held-out evaluation set; it is never trained on")
            datasets[path.name] = training.read_labelled(path)
        model = training.train(datasets, c)
        rows = sum(len(texts) for texts, _ in datasets.values())
        meta = {
            "trained_on": [
                TFNS if data.resolve() == DEFAULT_DATA.resolve() else data.name,
                *[p.name for p in extra],
            ],
            "rows": rows,
            "extra_weight": training.EXTRA_WEIGHT,
            "C": c,
        }
        training.save(model, out, meta)
        self.stdout.write(f"trained on {rows} rows; {len(model.weights)} features -> {out}")
