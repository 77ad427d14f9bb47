"""Sensor that adds every new device folder under ``raw_images/`` as a ``devices`` partition.

Which folder names are devices is decided by :func:`~stickypi_assets.pipeline.raw_images.discover_devices`
(canonical lower-case ids only): a ``raw_images/0A1B2C3D/`` beside ``raw_images/0a1b2c3d/`` never becomes a
second partition; it is logged here and reported by ``stickypi images audit``.
"""


from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from stickypi_assets.orchestration.partitions import DEVICES
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.raw_images import discover_devices


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds devices found under raw_images/<device>/ to the dynamic 'devices' partitions.",
)
def device_discovery_sensor(context: SensorEvaluationContext, storage: StickyPiStorage):
    valid, rejected = discover_devices(storage.object_store())
    if rejected:
        context.log.warning(
            "ignored folders under raw_images/ that are not device ids (8 lower-case hex digits; an upper-case "
            f"twin of a device folder is refused, not added as a second device): {rejected}"
        )
    known = set(context.instance.get_dynamic_partitions(DEVICES.name or "devices"))
    new = [d for d in valid if d not in known]
    if not new:
        return SkipReason(f"no new devices ({len(valid)} known)")
    context.log.info(f"adding devices {new}")
    return SensorResult(dynamic_partitions_requests=[DEVICES.build_add_request(new)])
