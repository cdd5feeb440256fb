"""Provider types behind one interface, and the HTTP client that reaches them.

`base.Provider` is the interface; each provider type is one module implementing it, listed
once in `registry`. `http_client` is the only code in the service that talks to backends;
`stream_pipeline` turns a provider's stream into Anthropic frames.

May import: translation, toolcalls and the primitives; never routing, frontdoors or ops.
"""
