from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from market.api.serializers import ErrorOut, RateLimitOut

from .domain.engine import analyze
from .serializers import AnalyzeBatchOut, AnalyzeIn, AnalyzeOut
from .serving import served_model

RESULT = PolymorphicProxySerializer(
    component_name="AnalyzeResult", serializers=[AnalyzeOut, AnalyzeBatchOut], resource_type_field_name=None
)


class AnalyzeView(APIView):
    @extend_schema(
        operation_id="sentiment_analyze",
        request=AnalyzeIn,
        responses={
            200: OpenApiResponse(RESULT, description="one result for `text`, or `results` in order for `texts`"),
            400: OpenApiResponse(
                ErrorOut,
                description="Empty, missing, non-string or over-long text; more characters in all than "
                "SENTIMENT_MAX_REQUEST_CHARS; malformed JSON",
            ),
            401: OpenApiResponse(ErrorOut, description="Wrong or revoked API key"),
            413: OpenApiResponse(ErrorOut, description="Body over the size limit"),
            429: OpenApiResponse(RateLimitOut, description="Rate limit exceeded"),
        },
        examples=[
            OpenApiExample("Single text", value={"text": "Bitcoin is surging! Great bullish momentum."}, request_only=True),
            OpenApiExample(
                "Bullish",
                value={"sentiment": "Bullish", "confidence": 0.85, "keywords": {"bullish": 2, "bearish": 0, "total": 2}},
                response_only=True,
            ),
        ],
        summary="Bullish, Bearish or Neutral, with a calibrated confidence",
    )
    def post(self, request):
        serializer = AnalyzeIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = served_model()
        if "texts" in data:
            return Response({"results": [analyze(t, model).as_dict() for t in data["texts"]]})
        return Response(analyze(data["text"], model).as_dict())
