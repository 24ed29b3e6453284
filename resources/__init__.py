"""The files the app ships: the sample document, the icon and menu entry, the tiny-trained model. Installed as
the package ``inference.data`` (see ``inference/resources.py``)."""
