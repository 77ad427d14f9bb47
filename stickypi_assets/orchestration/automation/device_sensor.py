"""Sensor that adds every new device folder under ``raw_images/`` as a ``devices`` partition."""


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
            f"ignored folders under raw_images/ that are not device ids (8 hex digits): {rejected}"
        )
    known = set(context.instance.get_dynamic_partitions(DEVICES.name or "devices"))
    new = [d for d in valid if d not in known]
    if not new:
        return SkipReason(f"no new devices ({len(valid)} known)")
    context.log.info(f"adding devices {new}")
    return SensorResult(dynamic_partitions_requests=[DEVICES.build_add_request(new)])
