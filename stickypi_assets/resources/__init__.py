from stickypi_assets.resources.storage import StickyPiStorage
from stickypi_assets.resources.uid_model import UidModelResource

__all__ = ["StickyPiStorage", "UidModelResource"]
