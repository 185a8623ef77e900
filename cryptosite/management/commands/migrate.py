"""`manage.py migrate`, one host at a time: on PostgreSQL it holds an advisory lock while it runs,
so hosts started together (`make run` on each, sharing one database) migrate in turn instead of
racing to create the same tables; the later ones find nothing left to do. Otherwise Django's own."""

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

ADVISORY_LOCK = 0x6372797074  # "crypt": the key every cryptosite migrate takes


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK])
        try:
            return super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK])
