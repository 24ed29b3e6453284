"""How the ``tiny-trained`` demonstration model is trained (not part of the installed package)."""
