"""The report write as one database function (command/services/report_function.py): a phone's
report costs one round trip instead of six."""

from django.db import migrations

from command.services.report_function import DROP_SQL, FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("command", "0004_device_token"), ("authtoken", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION_SQL, reverse_sql=DROP_SQL)]
