"""How the OpenAPI schema (drf-spectacular) describes ApiKeyAuthentication: two headers, either
one, and optional on every operation (`{}`: anonymous). Registered at start (apikeys.apps)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = ["Api-Key", "X-API-Key"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "`Authorization: Api-Key <key>`: the key's tier's rate limit instead of the IP's. "
                            "A wrong or revoked key is a 401."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key",
             "description": "`X-API-Key: <key>`: the same, in a header of its own."},
        ]

    def get_security_requirement(self, auto_schema):
        return [{"Api-Key": []}, {"X-API-Key": []}, {}]
