from django.urls import re_path

from .consumers import PriceStreamConsumer

websocket_urlpatterns = [re_path(r"^ws/?$", PriceStreamConsumer.as_asgi())]
