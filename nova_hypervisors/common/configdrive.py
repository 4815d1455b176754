"""The config drive both drivers attach: Nova's ISO 9660 image, as bytes.

Config drives are small (a few hundred KiB), so the image is built in a
private temporary directory and handed over whole; each driver only decides
where the bytes go (a VDI, a datastore file).
"""

from __future__ import annotations

import os
import tempfile

from nova.api.metadata import base as instance_metadata
from nova.virt import configdrive


def build(instance, injected_files, admin_password, network_info) -> bytes:
    """The instance's config drive image (ISO 9660, as Nova builds it)."""
    extra_md = {'admin_pass': admin_password} if admin_password else {}
    metadata = instance_metadata.InstanceMetadata(
        instance,
        content=injected_files,
        extra_md=extra_md,
        network_info=network_info,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'configdrive.iso')
        with configdrive.ConfigDriveBuilder(instance_md=metadata) as builder:
            builder.make_drive(path)
        with open(path, 'rb') as image:
            return image.read()
