"""Every model module, imported once so that `Base.metadata` knows every table.

Alembic's env.py and the migration tests use this; add a new model module here.
"""

from storage import (
    models,
    models_channels,
    models_console,
    models_files,
    models_limits,
    models_outreach,
    models_profiles,
    models_reports,
    models_requests,
    models_reviews,
    models_secrets,
)
from storage.models import Base

__all__ = [
    "Base",
    "models",
    "models_channels",
    "models_console",
    "models_files",
    "models_limits",
    "models_outreach",
    "models_profiles",
    "models_reports",
    "models_requests",
    "models_reviews",
    "models_secrets",
]
