"""Serving the engine over HTTP (``dwb serve``) and using a remote one (the ``remote`` task engine)."""
