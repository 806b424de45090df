"""Pure-torch rendering: rasterizer, guidance maps, geometric warp."""
