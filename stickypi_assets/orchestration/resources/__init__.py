from stickypi_assets.orchestration.resources.models import ItcModelResource, SimModelResource, UidModelResource
from stickypi_assets.orchestration.resources.storage import StickyPiStorage

__all__ = ["ItcModelResource", "SimModelResource", "StickyPiStorage", "UidModelResource"]
