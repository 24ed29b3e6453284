"""The model runtime: block diffusion (engine), chunked prefill, sampling rules, the chat template, parameters,
the typed events the engine yields and cooperative cancellation. ``available`` says whether torch is installed."""
