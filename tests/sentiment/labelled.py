"""Labelled CSV files (`text,label`) as the training and evaluation commands read them."""

import csv


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path
