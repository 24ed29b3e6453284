"""Model weights: where they come from (sources), how big they are (sizing), which device holds them (devices),
how they load (loading), 4-bit quantization and its cache, and the built-in tiny models."""
