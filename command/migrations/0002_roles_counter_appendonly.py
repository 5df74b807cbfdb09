"""The event counter row, the roles (groups with their layer permissions), and triggers that
make the audit tables append-only."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from command.layers import ROLE_LAYERS, ROLE_PERSONAL_DATA


def roles_create(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, layers in ROLE_LAYERS.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [f"view_layer_{name}" for name in layers]
        if ROLE_PERSONAL_DATA[role]:
            codenames.append("view_personal_data")
        if role in {"admin", "operator"}:
            codenames.append("dispatch_incident")
        group.permissions.set(Permission.objects.filter(content_type__app_label="command", codename__in=codenames))


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_LAYERS)).delete()


APPEND_ONLY = """
CREATE OR REPLACE FUNCTION command_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER personaldataaccess_append_only BEFORE UPDATE OR DELETE ON command_personaldataaccess
  FOR EACH ROW EXECUTE FUNCTION command_refuse_change();
CREATE TRIGGER event_no_update BEFORE UPDATE ON command_event
  FOR EACH ROW EXECUTE FUNCTION command_refuse_change();
"""

APPEND_ONLY_REVERSE = """
DROP TRIGGER IF EXISTS personaldataaccess_append_only ON command_personaldataaccess;
DROP TRIGGER IF EXISTS event_no_update ON command_event;
DROP FUNCTION IF EXISTS command_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("command", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunSQL(
            "INSERT INTO command_eventcounter (id, last_seq) VALUES (1, 0) ON CONFLICT DO NOTHING",
            "DELETE FROM command_eventcounter",
        ),
        migrations.RunPython(roles_create, roles_delete),
        migrations.RunSQL(APPEND_ONLY, APPEND_ONLY_REVERSE),
    ]
