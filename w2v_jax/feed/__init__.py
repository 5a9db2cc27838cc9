"""Host -> device: the run's examples on the devices, a group of blocks at a time.

``stream`` (the two kinds of stream, chosen once), ``group`` (one group on the device, its
batch order and counts), ``device`` and ``draws`` (a streamed group's examples drawn on the
device), ``shards`` (a group dealt to the mesh's data axis), ``batches`` (a batch's pairs, in
the run's pair layout). The stream's names are this package's."""

from w2v_jax.feed.stream import KeptGroup, Stream, StreamedGroups, first_examples, open_stream

__all__ = ["KeptGroup", "Stream", "StreamedGroups", "first_examples", "open_stream"]
