from stickypi_assets.resources.models import SimModelResource, UidModelResource
from stickypi_assets.resources.storage import StickyPiStorage

__all__ = ["SimModelResource", "StickyPiStorage", "UidModelResource"]
