"""The event counter row, the roles (groups with their layer permissions), and triggers that
make the audit tables append-only."""

from django.db import migrations

from command.rolesync import RolesSync

# The roles as command.roles declared them when this migration was written (frozen: later
# changes come in later migrations).
ROLES = {   'admin': [   'dispatch_incident',
                 'view_layer_buildings',
                 'view_layer_camera_cones',
                 'view_layer_cameras',
                 'view_layer_cells',
                 'view_layer_hotspots',
                 'view_layer_households',
                 'view_layer_incidents',
                 'view_layer_reports',
                 'view_layer_roads',
                 'view_layer_workers',
                 'view_personal_data'],
    'grid_worker': [   'view_layer_buildings',
                       'view_layer_camera_cones',
                       'view_layer_cameras',
                       'view_layer_cells',
                       'view_layer_hotspots',
                       'view_layer_households',
                       'view_layer_incidents',
                       'view_layer_reports',
                       'view_layer_roads',
                       'view_layer_workers',
                       'view_personal_data'],
    'operator': [   'dispatch_incident',
                    'view_layer_buildings',
                    'view_layer_camera_cones',
                    'view_layer_cameras',
                    'view_layer_cells',
                    'view_layer_hotspots',
                    'view_layer_households',
                    'view_layer_incidents',
                    'view_layer_reports',
                    'view_layer_roads',
                    'view_layer_workers',
                    'view_personal_data'],
    'police': [   'view_layer_buildings',
                  'view_layer_camera_cones',
                  'view_layer_cameras',
                  'view_layer_cells',
                  'view_layer_hotspots',
                  'view_layer_incidents',
                  'view_layer_roads']}


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
        RolesSync(ROLES),
        migrations.RunSQL(APPEND_ONLY, APPEND_ONLY_REVERSE),
    ]
