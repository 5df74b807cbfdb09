from django.apps import AppConfig


class ResidentsConfig(AppConfig):
    """Resident services' pages and webhooks (issue #16), a sub-package of field_api; the domain
    (models, services) is in command."""

    name = "field_api.residents"
    label = "residents"
