"""Plain-text descriptions of a backbone: its trunk and its pyramid levels."""
from typing import Optional, Sequence

import torch


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Left-aligned text table."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def trunk_summary(backbone) -> str:
    """One line on the ViT inside a ViTPyramid."""
    t = backbone.trunk
    return (f"trunk {t.model_name}: depth {t.num_blocks}, width "
            f"{t.embed_dim}, patch {t.patch_size[0]}, prefix tokens {t.num_prefix_tokens} "
            f"(class token: {'yes' if t.has_class_token else 'no'}, registers: {t.num_register_tokens}), "
            f"blocks {tuple(t.block_indices)} -> stride {t.stride[0]} grid ({t.grid_mapping!r} mapping)")


def pyramid_table(backbone, image_size: Sequence[int],
                  outputs: Optional[Sequence[torch.Tensor]] = None) -> str:
    """feature_info as a table, with each level's size for ``image_size`` (and the actual output
    shapes when ``outputs`` is given)."""
    header = ['level', 'channels', 'stride', 'module', 'block', 'size for %dx%d' % tuple(image_size)]
    if outputs is not None:
        header.append('output shape')
    rows = []
    names = list(backbone.output_shape())
    sizes = backbone.output_sizes(image_size)
    for i, info in enumerate(backbone.feature_info.get_dicts()):
        row = [names[i], info['num_chs'], info['reduction'], info['module'], info['block'],
               '%dx%d' % sizes[i]]
        if outputs is not None:
            y = outputs[i][0] if isinstance(outputs[i], (list, tuple)) else outputs[i]
            row.append('x'.join(map(str, y.shape)))
        rows.append(row)
    return format_table(header, rows)
