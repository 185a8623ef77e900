"""Cross-validated accuracy and macro-F1 of the sentiment engine.

    python manage.py evaluate_sentiment [--folds 5] [--data train.csv] [--labelled more.csv ...]
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sentiment import training
from sentiment.domain.engine import LABELS

from .train_sentiment import CRYPTO, DEFAULT_DATA


class Command(BaseCommand):
    help = "Evaluate the sentiment engine with k-fold cross-validation and print its figures."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
        parser.add_argument("--labelled", type=Path, nargs="*", default=[CRYPTO])
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--c", type=float, default=training.DEFAULT_C)

    def handle(self, *args, data: Path, labelled: list[Path], folds: int, c: float, **options):
        if not data.is_file():
            raise CommandError(f"No data at {data}")
        datasets = {data.name: training.read_labelled(data)}
        for path in labelled:
            datasets[path.name] = training.read_labelled(path)
        results = training.cross_validate(datasets, folds=folds, c=c)
        for name, r in results.items():
            self.stdout.write(f"{name}: {folds}-fold CV, n={r['n']}")
            self.stdout.write(f"  accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}")
            for label in LABELS:
                k = r[label]
                self.stdout.write(
                    f"  {label:8s} precision {k['precision']:.3f} recall {k['recall']:.3f} "
                    f"F1 {k['f1']:.3f} (n={k['support']})"
                )
