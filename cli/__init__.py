"""The fastkm command line (installed as ``fastkm.cli``)."""
