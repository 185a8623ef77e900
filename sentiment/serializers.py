from django.conf import settings
from rest_framework import serializers

from .domain.engine import ENGINES, MAX_TEXT_LENGTH

MAX_BATCH = 100


def _clean_text(value: object, name: str = "text") -> str:
    if not isinstance(value, str):
        raise serializers.ValidationError({name: "must be a string"})
    if not value.strip():
        raise serializers.ValidationError({name: "must not be empty"})
    if len(value) > MAX_TEXT_LENGTH:
        raise serializers.ValidationError({name: f"too long: at most {MAX_TEXT_LENGTH} characters"})
    return value


def _check_total(texts: list[str], name: str) -> None:
    """Scoring's work grows with the characters: a request has at most SENTIMENT_MAX_REQUEST_CHARS."""
    cap = settings.SENTIMENT_MAX_REQUEST_CHARS
    if sum(map(len, texts)) > cap:
        raise serializers.ValidationError({name: f"too long: at most {cap} characters in all per request"})


class AnalyzeIn(serializers.Serializer):
    """Either {"text": "..."} or {"texts": ["...", ...]} (up to 100)."""

    text = serializers.CharField(required=False, max_length=MAX_TEXT_LENGTH, allow_blank=False)
    texts = serializers.ListField(child=serializers.CharField(), required=False, max_length=MAX_BATCH)

    engine = serializers.ChoiceField(choices=list(ENGINES), required=False,
                                     help_text="the engine (default: SENTIMENT_ENGINE, itself fast by default)")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Body must be a JSON object with a 'text' field"]})
        engine = data.get("engine")
        if engine is not None and engine not in ENGINES:
            raise serializers.ValidationError({"engine": "must be " + " or ".join(f'"{e}"' for e in ENGINES)})
        chosen = {"engine": engine} if engine else {}
        if "texts" in data and "text" in data:
            raise serializers.ValidationError({"non_field_errors": ["Send either 'text' or 'texts', not both"]})
        if "texts" in data:
            items = data["texts"]
            if not isinstance(items, list) or not items:
                raise serializers.ValidationError({"texts": "must be a non-empty list of strings"})
            if len(items) > MAX_BATCH:
                raise serializers.ValidationError({"texts": f"at most {MAX_BATCH} texts per request"})
            texts = [_clean_text(t, "texts") for t in items]
            _check_total(texts, "texts")
            return {"texts": texts, **chosen}
        if "text" not in data:
            raise serializers.ValidationError({"text": "This field is required."})
        text = _clean_text(data["text"])
        _check_total([text], "text")
        return {"text": text, **chosen}


class KeywordsOut(serializers.Serializer):
    bullish = serializers.IntegerField()
    bearish = serializers.IntegerField()
    total = serializers.IntegerField()


class AnalyzeOut(serializers.Serializer):
    sentiment = serializers.ChoiceField(choices=["Bullish", "Bearish", "Neutral"])
    confidence = serializers.FloatField(min_value=0, max_value=1)
    keywords = KeywordsOut()
    probabilities = serializers.DictField(child=serializers.FloatField())


class AnalyzeBatchOut(serializers.Serializer):
    results = AnalyzeOut(many=True)
