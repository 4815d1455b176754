"""What both drivers read the same way from Nova's block device info."""


def root_volume_of(volumes: list) -> dict | None:
    """The volume Nova boots from (boot index 0), if any."""
    for volume in volumes:
        if volume.get('boot_index') == 0:
            return volume
    return None


def volume_id_of(connection_info: dict) -> str:
    """The Cinder volume id of a connection (its data, else its serial)."""
    data = connection_info.get('data') or {}
    return str(data.get('volume_id') or connection_info.get('serial') or '')
