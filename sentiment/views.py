from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import error_response
from market.api.serializers import ErrorOut, RateLimitOut

from .serializers import AnalyzeBatchOut, AnalyzeIn, AnalyzeOut
from .serving import analyze_texts
from .transformer import Busy

BUSY_RETRY_AFTER = 1  # seconds

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
            503: OpenApiResponse(ErrorOut, description="The transformer engine is busy with other requests (Retry-After)"),
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
        texts = data["texts"] if "texts" in data else [data["text"]]
        try:
            results = [a.as_dict() for a in analyze_texts(texts, data.get("engine"))]
        except Busy:
            response = error_response(503, "Sentiment engine busy", detail="the transformer engine is serving other "
                                      "requests; retry shortly", retry_after=BUSY_RETRY_AFTER)
            response["Retry-After"] = str(BUSY_RETRY_AFTER)
            return response
        return Response({"results": results} if "texts" in data else results[0])
