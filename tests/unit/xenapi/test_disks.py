"""Image streaming and disk sizing."""

import struct

from nova import exception
from nova import objects
import testtools

from nova_hypervisors.common import images
from nova_hypervisors.xenapi import disks


class Sink:
    def __init__(self):
        self.chunks = []
        self.closed = self.aborted = False

    def write(self, chunk):
        self.chunks.append(chunk)

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


class TestStreamingWriter(testtools.TestCase):
    def test_the_sink_opens_after_the_head_and_gets_every_byte(self):
        heads, sink = [], Sink()

        def open_sink(head):
            heads.append(head)
            return sink

        writer = images.StreamingWriter(open_sink, head_size=8)
        writer.write(b'abc')
        self.assertEqual([], heads)
        writer.write(b'defghij')
        writer.write(b'klm')
        writer.finish()
        self.assertEqual([b'abcdefgh'], heads)
        self.assertEqual(b'abcdefghijklm', b''.join(sink.chunks))
        self.assertTrue(sink.closed)

    def test_a_tiny_image_still_reaches_the_sink(self):
        sink = Sink()
        writer = images.StreamingWriter(lambda head: sink, head_size=512)
        writer.write(b'xy')
        writer.finish()
        self.assertEqual(b'xy', b''.join(sink.chunks))

    def test_an_unsupported_format_is_refused(self):
        meta = objects.ImageMeta.from_dict({'id': 'i', 'disk_format': 'iso'})
        exc = self.assertRaises(
            exception.ImageUnacceptable,
            images.require_disk_format,
            meta,
            ('raw', 'vhd'),
        )
        self.assertIn("'iso'", str(exc))


class TestVhdSize(testtools.TestCase):
    def test_a_dynamic_vhd_tells_its_size_in_the_footer_copy(self):
        head = (
            b'conectix'
            + b'\0' * 40
            + struct.pack('>Q', 10 << 30)
            + b'\0' * 456
        )
        self.assertEqual(10 << 30, disks.vhd_virtual_size(head, 4096))

    def test_a_fixed_vhd_is_its_data_and_a_footer(self):
        self.assertEqual(
            1 << 20, disks.vhd_virtual_size(b'\0' * 512, (1 << 20) + 512)
        )
