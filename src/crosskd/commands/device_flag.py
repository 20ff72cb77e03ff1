"""The `--device` flag's help, shared by every command that runs a model (and torch-free, so
`zoo list` can import it without loading torch)."""

#: what `--device` takes, for a command whose default is its own (`index`: the CPU)
DEVICE_VALUES = ("GPU index (0), 'cuda', 'cuda:N' or 'cpu'; on a machine without CUDA only "
                 "--device 0 runs, on the CPU")
DEVICE_HELP = DEVICE_VALUES + " (default: the first GPU if there is one, else the CPU)"
