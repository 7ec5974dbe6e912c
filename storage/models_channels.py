"""Tables added for the channels work. Import Base from storage.models; storage.schema imports this module."""

from __future__ import annotations
