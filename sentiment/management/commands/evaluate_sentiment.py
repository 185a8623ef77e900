"""Accuracy and macro-F1 of the sentiment engine: k-fold cross-validation on the training data,
then the held-out posts scored by a model trained on all of it.

    python manage.py evaluate_sentiment [--folds 5] [--data train.csv] [--labelled more.csv ...]
                                        [--holdout unseen.csv ...]
    python manage.py evaluate_sentiment --engine transformer [--holdout unseen.csv ...]

The transformer engine is not cross-validated here (a fold is a training of many minutes:
`train_sentiment --engine transformer` validates on a fold of its own and records the figures in
meta.json, printed first). The held-out files are scored by the engine as the server answers:
the model SENTIMENT_TRANSFORMER_DIR names, beside the fast model served.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sentiment import training
from sentiment.domain.engine import ENGINES, LABELS

from .train_sentiment import CRYPTO, DEFAULT_DATA, HOLDOUTS


class Command(BaseCommand):
    help = "Evaluate the sentiment engine (k-fold cross-validation, then held-out sets) and print its figures."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
        parser.add_argument("--labelled", type=Path, nargs="*", default=[CRYPTO])
        parser.add_argument("--holdout", type=Path, nargs="*", default=HOLDOUTS, help="scored only, never trained on")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--c", type=float, default=training.DEFAULT_C)
        parser.add_argument("--engine", choices=ENGINES, default="fast")

    def handle(self, *args, **options):
        try:
            self._handle(**options)
        except ValueError as exc:  # a bad label or header, a label without rows
            raise CommandError(f"Bad labelled data: {exc}") from exc

    def _handle(self, *, data: Path, labelled: list[Path], holdout: list[Path], folds: int, c: float, engine: str,
                **options):
        for path in [data, *labelled, *holdout]:
            if not path.is_file():
                raise CommandError(f"No data at {path}")
        if engine == "transformer":
            return self._transformer(holdout)
        if folds < 2:
            raise CommandError("--folds must be at least 2")
        datasets = {data.name: training.read_labelled(data)}
        for path in labelled:
            datasets[path.name] = training.read_labelled(path)
        for name, r in training.cross_validate(datasets, folds=folds, c=c).items():
            self._report(f"{name}: {folds}-fold CV", r)
        if holdout:
            tests = {path.name: training.read_labelled(path) for path in holdout}
            for name, r in training.held_out(datasets, tests, c=c).items():
                self._report(f"{name}: held out (trained on all of the above)", r)

    def _transformer(self, holdout: list[Path]) -> None:
        from django.conf import settings

        from sentiment import serving
        from sentiment.transformer import NOT_A_MODEL

        directory = settings.SENTIMENT_TRANSFORMER_DIR
        try:
            serving.analyze_texts(["warm-up"], "transformer")  # loads the model: its meta.json is an object
        except (*NOT_A_MODEL, ImportError) as exc:
            raise CommandError(f"{directory} is not a transformer sentiment model ({exc})") from exc
        figures = json.loads((directory / "meta.json").read_text()).get("figures")
        recorded = figures.get("validation") if isinstance(figures, dict) else None
        if isinstance(recorded, dict):
            self.stdout.write(f"{directory}: recorded at training, on {recorded.get('rows', 'held-out rows')}")
            self.stdout.write(json.dumps({k: v for k, v in recorded.items() if k != "rows"}, indent=1))
        for path in holdout:
            texts, labels = training.read_labelled(path)
            predicted = [LABELS.index(a.sentiment) for a in serving.analyze_texts(texts, "transformer")]
            self._report(f"{path.name}: the transformer engine as served", training.scores(labels, predicted))

    def _report(self, title: str, r: dict) -> None:
        self.stdout.write(f"{title}, n={r['n']}")
        self.stdout.write(f"  accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}")
        for label in LABELS:
            k = r[label]
            self.stdout.write(
                f"  {label:8s} precision {k['precision']:.3f} recall {k['recall']:.3f} "
                f"F1 {k['f1']:.3f} (n={k['support']})"
            )
