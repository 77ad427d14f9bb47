from stickypi_assets.resources.storage import StickyPiStorage

__all__ = ["StickyPiStorage"]
