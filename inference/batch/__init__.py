"""Running parse over many documents: the batch runner, the page store that lets a rerun go on, and Ray."""
