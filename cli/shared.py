"""``fastkm compress IN... --shared-palette``: one palette for all the inputs."""

from __future__ import annotations

import time
from pathlib import Path

from . import outputs, report
from .errors import CliError


def compress_shared(inputs: list[Path], targets: list[Path], k: int, options: dict,
                    force: bool, on_error) -> list[report.Result]:
    """Read every input, fit one palette on their merged histograms
    (``fastkm.quantize_many``), write each output. An input that cannot be read is reported
    through ``on_error(source, exc)`` and left out of the palette; the others are done."""
    from fastkm.images import read_image
    from fastkm.shared_palette import quantize_many

    from .app import _check_input, _measured

    start = time.perf_counter()
    read = []
    for source, target in zip(inputs, targets):
        try:
            _check_input(source)
            if source.suffix.lower() == ".fkm":
                raise CliError(f"{source}: is a .fkm file already (fastkm decode turns it "
                               "into a PNG)")
            if outputs.format_of(target) == "fkm":
                outputs.check_fkm_size(source)
            image = read_image(source)
            read.append((source, target, image))
        except Exception as exc:  # noqa: BLE001 -- one bad file is one line; others go on
            on_error(source, exc)
    if not read:
        return []
    channels = {image.shape[2] if image.ndim == 3 else 1 for _, _, image in read}
    if len(channels) > 1:
        raise CliError("--shared-palette: the inputs mix greyscale, colour and alpha "
                       f"(channel counts {sorted(channels)}); one palette needs one kind")
    qs = quantize_many([image for _, _, image in read], k, **options)
    shared = (time.perf_counter() - start) / len(read)
    results = []
    for (source, target, image), q in zip(read, qs):
        try:
            t0 = time.perf_counter()
            data = outputs.encode(q, outputs.format_of(target))
            outputs.write(target, data, force=force)
            results.append(_measured(image, q, data, shared + time.perf_counter() - t0,
                                     str(target)))
        except Exception as exc:  # noqa: BLE001 -- one bad file is one line; others go on
            on_error(source, exc)
    return results
