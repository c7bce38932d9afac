"""mmsegmentation / mmengine glue: registering vitadapter's classes in their registries.

Importing this package needs mmsegmentation; ``import vitadapter`` does it when mmseg is present.
"""
from .registry import register_all

register_all()

__all__ = ['register_all']
