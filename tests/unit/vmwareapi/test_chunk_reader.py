"""A download handed to Glance as a file, chunk by chunk."""

import unittest

from nova_hypervisors.vmwareapi import datastore


class TestChunkReader(unittest.TestCase):
    def test_reads_every_byte_in_order_across_chunks(self):
        chunks = [b'ab', b'', b'cdef', b'g']
        with datastore.reader(chunks) as data:
            self.assertEqual(b'abc', data.read(3))
            self.assertEqual(b'defg', data.read())
            self.assertEqual(b'', data.read())

    def test_chunks_are_pulled_only_as_they_are_read(self):
        pulled = []

        def chunks():
            for index in range(3):
                pulled.append(index)
                yield bytes([index]) * datastore.CHUNK

        with datastore.reader(chunks()) as data:
            self.assertEqual(b'\0' * 10, data.read(10))
            self.assertEqual([0], pulled)
