"""Own videos into datasets: decoding, expert and text-encoder registries, caption readers
and the writer of the published layout (`crosskd extract`). Sits above crosskd.data and
crosskd.datasets, below the commands."""
