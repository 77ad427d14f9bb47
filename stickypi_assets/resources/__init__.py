from stickypi_assets.resources.models import ItcModelResource, SimModelResource, UidModelResource
from stickypi_assets.resources.storage import StickyPiStorage

__all__ = ["ItcModelResource", "SimModelResource", "StickyPiStorage", "UidModelResource"]
